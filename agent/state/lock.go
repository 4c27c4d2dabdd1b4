package state

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// CorruptLockGrace is how old an unreadable lock.json must be before it is
// treated as abandoned. Locks are published complete (see publish), so an
// unreadable one is damage, not a holder still writing; the grace only
// covers a lock written by an older agent that created it empty first.
const CorruptLockGrace = 30 * time.Second

// ErrCorruptLock marks a lock.json that exists but does not parse.
var ErrCorruptLock = errors.New("lock file is not valid")

// LockedError says another agent holds the host.
type LockedError struct {
	Holder protocol.LockHolder
}

func (e *LockedError) Error() string {
	h := e.Holder
	who := h.User
	if h.Operator != "" {
		who = h.Operator + " (as " + h.User + ")"
	}
	msg := fmt.Sprintf("host is locked by %s on %s, agent pid %d, since %s", who, h.Machine, h.PID, h.Since.UTC().Format(time.RFC3339))
	if !h.Heard.IsZero() {
		msg += fmt.Sprintf(", last heard from %s ago", time.Since(h.Heard).Round(time.Second))
	}
	return msg
}

// Lock is a held host lock.
type Lock struct {
	path string
	raw  []byte // exactly what was published, to recognise our own lock
	// Holder is who holds it: this agent.
	Holder protocol.LockHolder
	// BrokeStale names the holder of a lock that was found abandoned by a
	// dead agent and taken over, so the caller can report it.
	BrokeStale *protocol.LockHolder
	// BrokeCorrupt is set when an unreadable lock older than
	// CorruptLockGrace was taken over.
	BrokeCorrupt bool
}

// Acquire takes the host lock for operator. A lock left by an agent process
// that no longer exists on this machine, or one that has been unreadable
// for CorruptLockGrace, is taken over; a live one yields a *LockedError
// naming its holder.
func Acquire(l Layout, operator string) (*Lock, error) {
	if err := os.MkdirAll(l.Root, 0o755); err != nil {
		return nil, err
	}
	me, err := currentHolder(operator)
	if err != nil {
		return nil, err
	}
	mine, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	var broke *protocol.LockHolder
	brokeCorrupt := false
	for attempt := 0; attempt < 5; attempt++ {
		err := publish(l.LockFile(), mine)
		if err == nil {
			return &Lock{path: l.LockFile(), raw: mine, Holder: me, BrokeStale: broke, BrokeCorrupt: brokeCorrupt}, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // our temp file was swept by the holder; try again
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		holder, raw, err := readLock(l)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // released between our attempts
		case errors.Is(err, ErrCorruptLock):
			fi, serr := os.Stat(l.LockFile())
			if serr != nil {
				continue
			}
			if age := time.Since(fi.ModTime()); age < CorruptLockGrace {
				return nil, fmt.Errorf("%w (%v); it is taken over once it is %s old, or remove it with break_lock", ErrCorruptLock, err, CorruptLockGrace)
			}
			ok, err := breakIf(l, raw)
			if err != nil {
				return nil, err
			}
			brokeCorrupt = brokeCorrupt || ok
			continue
		case err != nil:
			return nil, err
		}
		if holder.Machine != me.Machine || (processAlive(holder.PID) && !silent(l, holder)) {
			return nil, &LockedError{Holder: public(l, *holder)}
		}
		ok, err := breakIf(l, raw)
		if err != nil {
			return nil, err
		}
		if ok {
			h := *holder
			broke = &h
		}
	}
	if holder, _, err := readLock(l); err == nil {
		return nil, &LockedError{Holder: public(l, *holder)}
	}
	return nil, errors.New("could not take the host lock")
}

// publish makes path name a complete holder record, or fails with an error
// matching fs.ErrExist if path exists. The record is written and synced
// under a temp name first and then hard-linked to path, which never
// replaces an existing file: readers see no lock or a whole one, never an
// empty or half-written file, and of two agents only one link succeeds.
func publish(path string, content []byte) error {
	f, err := atomicfile.CreateTemp(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(content)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return os.Link(tmp, path)
}

// breakIf removes the lock if it still holds exactly raw. It first renames
// the lock to a name of its own, so of two agents breaking the same stale
// lock only one gets it, and then re-reads what it took: if that is no
// longer raw (another agent broke the stale lock and took the host
// meanwhile), it puts that lock back.
func breakIf(l Layout, raw []byte) (bool, error) {
	aside, err := uniqueName(l.LockFile() + "-broken")
	if err != nil {
		return false, err
	}
	if err := atomicfile.Rename(l.LockFile(), aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	took, err := atomicfile.ReadFile(aside)
	if err == nil && bytes.Equal(took, raw) {
		return true, os.Remove(aside)
	}
	// Not the lock we judged: restore it unless the host was locked again
	// in the meantime, in which case that newer lock wins.
	if lerr := os.Link(aside, l.LockFile()); lerr != nil && !errors.Is(lerr, fs.ErrExist) {
		return false, fmt.Errorf("restoring %s: %w", l.LockFile(), lerr)
	}
	os.Remove(aside)
	return false, nil
}

// uniqueName returns prefix plus a random suffix, a temp name so a run that
// dies before removing it has it swept.
func uniqueName(prefix string) (string, error) {
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(prefix), atomicfile.TempPrefix+filepath.Base(prefix)+"-"+tok), nil
}

// readLock returns the holder and the file's exact bytes. A missing lock
// yields an error matching fs.ErrNotExist; one that does not parse
// ErrCorruptLock (with its bytes, so it can be broken exactly).
func readLock(l Layout) (*protocol.LockHolder, []byte, error) {
	b, err := atomicfile.ReadFile(l.LockFile())
	if err != nil {
		return nil, nil, err
	}
	var h protocol.LockHolder
	if err := json.Unmarshal(b, &h); err != nil || h.PID == 0 {
		if err == nil {
			err = errors.New("no holder pid")
		}
		return nil, b, fmt.Errorf("%s: %w: %v", l.LockFile(), ErrCorruptLock, err)
	}
	return &h, b, nil
}

// ReadHolder returns the current holder, or nil if the host is unlocked.
// An unreadable lock file yields an error matching ErrCorruptLock.
func ReadHolder(l Layout) (*protocol.LockHolder, error) {
	h, _, err := readLock(l)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if h != nil {
		p := public(l, *h)
		h = &p
	}
	return h, err
}

// public is a holder as reported: without the token, which only the
// holding agent needs.
func public(l Layout, h protocol.LockHolder) protocol.LockHolder {
	h.Token = ""
	if h.Alive {
		// When it was last heard from: the lock file's time.
		h.Heard = heard(l).UTC()
	}
	return h
}

// BreakLock removes the host lock if it names the holder an operator
// verified to be gone (pid and since), even if a live process now has that
// pid (Windows reuses them). It returns the holder it removed; a lock of
// anyone else yields a *LockedError naming them.
func BreakLock(l Layout, pid int, since time.Time) (*protocol.LockHolder, error) {
	for attempt := 0; attempt < 3; attempt++ {
		h, raw, err := readLock(l)
		if err != nil {
			return nil, err
		}
		if h.PID != pid || !h.Since.Equal(since) {
			return nil, &LockedError{Holder: public(l, *h)}
		}
		ok, err := breakIf(l, raw)
		if err != nil {
			return nil, err
		}
		if ok {
			p := public(l, *h)
			return &p, nil
		}
	}
	return nil, errors.New("the lock kept changing; try again")
}

// LockTouchEvery is how often a holder touches the lock file to show it
// lives; LockStale is how long one that promised to may go untouched
// before the lock is taken for abandoned (its agent hung, or its pid
// reused by another process).
const (
	LockTouchEvery = 5 * time.Second
	LockStale      = 30 * time.Second
)

// Touch marks the lock as held by a live agent: its file's time is now.
func (lk *Lock) Touch() error {
	now := time.Now()
	return os.Chtimes(lk.path, now, now)
}

// heard is when the lock file was last touched.
func heard(l Layout) time.Time {
	fi, err := os.Stat(l.LockFile())
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// silent reports whether a holder that promised to touch its lock has
// not done so for LockStale.
func silent(l Layout, h *protocol.LockHolder) bool {
	return h.Alive && time.Since(heard(l)) > LockStale
}

// Release gives the lock up, if it is still ours: a lock that was broken
// and taken by another agent meanwhile is left alone.
func (lk *Lock) Release() error {
	if lk == nil {
		return nil
	}
	l := Layout{Root: filepath.Dir(lk.path)}
	_, err := breakIf(l, lk.raw)
	return err
}

func currentHolder(operator string) (protocol.LockHolder, error) {
	tok, err := randomToken()
	if err != nil {
		return protocol.LockHolder{}, err
	}
	h := protocol.LockHolder{Operator: operator, PID: os.Getpid(), Since: time.Now().UTC(), Token: tok, Alive: true}
	h.Machine, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	return h, nil
}

func randomToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
