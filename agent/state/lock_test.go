package state

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
)

// A reader must never find lock.json empty or half written: such a lock
// used to block the host for good and make facts fail.
func TestLockFileIsNeverSeenHalfWritten(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	done := make(chan struct{})
	var mu sync.Mutex
	var bad error
	failed := func() error { mu.Lock(); defer mu.Unlock(); return bad }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := ReadHolder(l); err != nil {
				mu.Lock()
				if bad == nil {
					bad = err
				}
				mu.Unlock()
			}
		}
	}()
	for i := 0; i < 300 && failed() == nil; i++ {
		lk, err := Acquire(l, "op")
		if err != nil {
			t.Fatal(err)
		}
		if err := lk.Release(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if err := failed(); err != nil {
		t.Fatalf("reader saw an unreadable lock: %v", err)
	}
}

// An unreadable lock is reported as such, and taken over once it is old.
func TestCorruptLockIsTakenOverOnceOld(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	if err := os.WriteFile(l.LockFile(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadHolder(l); !errors.Is(err, ErrCorruptLock) {
		t.Fatalf("ReadHolder: %v, want ErrCorruptLock", err)
	}
	if _, err := Acquire(l, "op"); !errors.Is(err, ErrCorruptLock) {
		t.Fatalf("young corrupt lock: %v, want ErrCorruptLock", err)
	}
	old := time.Now().Add(-2 * CorruptLockGrace)
	if err := os.Chtimes(l.LockFile(), old, old); err != nil {
		t.Fatal(err)
	}
	lk, err := Acquire(l, "op")
	if err != nil {
		t.Fatalf("old corrupt lock not taken over: %v", err)
	}
	if !lk.BrokeCorrupt {
		t.Fatal("taking over the corrupt lock was not reported")
	}
	lk.Release()
}

// Two agents breaking the same stale lock at once: exactly one may win.
func TestRacingStaleLockBreakersNeverBothHold(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	stale := []byte(`{"user":"x","machine":"` + host + `","pid":` + strconv.Itoa(cmd.Process.Pid) + `,"since":"2026-01-01T00:00:00Z"}`)
	for round := 0; round < 200; round++ {
		if err := os.WriteFile(l.LockFile(), stale, 0o644); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		locks := make([]*Lock, 2)
		for i := range locks {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				locks[i], _ = Acquire(l, "op"+strconv.Itoa(i))
			}(i)
		}
		close(start)
		wg.Wait()
		held := 0
		for _, lk := range locks {
			if lk != nil {
				held++
			}
		}
		if held != 1 {
			t.Fatalf("round %d: %d agents hold the lock, want exactly 1", round, held)
		}
		for _, lk := range locks {
			lk.Release()
		}
		if h, err := ReadHolder(l); h != nil || err != nil {
			t.Fatalf("round %d: lock left after release: %+v %v", round, h, err)
		}
	}
}

// Release removes only the releasing agent's own lock.
func TestReleaseLeavesAnotherAgentsLock(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	a, err := Acquire(l, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// An operator broke alice's lock and bob took the host.
	if _, err := BreakLock(l, a.Holder.PID, a.Holder.Since); err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(l, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHolder(l)
	if err != nil || h == nil || h.Operator != "bob" {
		t.Fatalf("after alice's release the holder is %+v (%v), want bob", h, err)
	}
	b.Release()
}

// break_lock's engine removes a lock only if it names the given holder,
// even when that holder's pid is alive (a reused pid).
func TestBreakLockNeedsTheExactHolder(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	lk, err := Acquire(l, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var locked *LockedError
	if _, err := BreakLock(l, lk.Holder.PID, lk.Holder.Since.Add(time.Second)); !errors.As(err, &locked) {
		t.Fatalf("wrong since: %v, want LockedError", err)
	}
	h, err := BreakLock(l, lk.Holder.PID, lk.Holder.Since)
	if err != nil || h.Operator != "alice" {
		t.Fatalf("break: %+v %v", h, err)
	}
	if h, err := ReadHolder(l); h != nil || err != nil {
		t.Fatalf("lock still there: %+v %v", h, err)
	}
}

// A holder that promised to show it lives and has not for LockStale is
// taken for dead even though its pid runs (here: this very process, as a
// hung agent's would); a fresh one fails fast, saying when it was last
// heard from.
func TestSilentHolderIsTakenOver(t *testing.T) {
	l := Layout{Root: testfs.TempDir(t)}
	first, err := Acquire(l, "alice@laptop")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(l, "bob@ci")
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.Heard.IsZero() || !strings.Contains(err.Error(), "last heard from") {
		t.Fatalf("a live holder: %v", err)
	}
	old := time.Now().Add(-LockStale - time.Second)
	if err := os.Chtimes(l.LockFile(), old, old); err != nil {
		t.Fatal(err)
	}
	second, err := Acquire(l, "bob@ci")
	if err != nil || second.BrokeStale == nil || second.BrokeStale.Operator != "alice@laptop" {
		t.Fatalf("a silent holder was not taken over: %+v, %v", second, err)
	}
	// Touch keeps a holder alive.
	if err := os.Chtimes(l.LockFile(), old, old); err != nil {
		t.Fatal(err)
	}
	if err := second.Touch(); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(l, "carol@desk"); !errors.As(err, &le) {
		t.Fatalf("a touched holder was taken over: %v", err)
	}
	// The first holder's release leaves the second's lock alone.
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if h, err := ReadHolder(l); err != nil || h == nil || h.Operator != "bob@ci" {
		t.Fatalf("holder after the old one's release: %+v, %v", h, err)
	}
}
