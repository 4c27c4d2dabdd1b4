package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

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
	return fmt.Sprintf("host is locked by %s on %s, agent pid %d, since %s", who, h.Machine, h.PID, h.Since.UTC().Format(time.RFC3339))
}

// Lock is a held host lock.
type Lock struct {
	path   string
	Holder protocol.LockHolder
	// BrokeStale names the holder of a lock that was found abandoned by a
	// dead agent and taken over, so the caller can report it.
	BrokeStale *protocol.LockHolder
}

// Acquire takes the host lock for operator. A lock left by an agent process
// that no longer exists on this machine is taken over; a live one yields a
// *LockedError naming its holder.
func Acquire(l Layout, operator string) (*Lock, error) {
	if err := os.MkdirAll(l.Root, 0o755); err != nil {
		return nil, err
	}
	me := currentHolder(operator)
	var broke *protocol.LockHolder
	for attempt := 0; attempt < 3; attempt++ {
		f, err := os.OpenFile(l.LockFile(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			b, _ := json.Marshal(me)
			_, werr := f.Write(b)
			serr := f.Sync()
			cerr := f.Close()
			if err := errors.Join(werr, serr, cerr); err != nil {
				os.Remove(l.LockFile())
				return nil, err
			}
			return &Lock{path: l.LockFile(), Holder: me, BrokeStale: broke}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		holder, rerr := ReadHolder(l)
		if rerr != nil {
			// The holder is still writing its name (or died while doing so);
			// give it a moment rather than breaking a live lock.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if holder == nil {
			continue // released between our attempts
		}
		if holder.Machine != me.Machine || processAlive(holder.PID) {
			return nil, &LockedError{Holder: *holder}
		}
		h := *holder
		broke = &h
		if err := os.Remove(l.LockFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if holder, _ := ReadHolder(l); holder != nil {
		return nil, &LockedError{Holder: *holder}
	}
	return nil, errors.New("could not take the host lock")
}

// ReadHolder returns the current holder, or nil if the host is unlocked.
func ReadHolder(l Layout) (*protocol.LockHolder, error) {
	b, err := os.ReadFile(l.LockFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h protocol.LockHolder
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", l.LockFile(), err)
	}
	return &h, nil
}

// Release gives the lock up.
func (lk *Lock) Release() error {
	if lk == nil {
		return nil
	}
	err := os.Remove(lk.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func currentHolder(operator string) protocol.LockHolder {
	h := protocol.LockHolder{Operator: operator, PID: os.Getpid(), Since: time.Now().UTC()}
	h.Machine, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	return h
}
