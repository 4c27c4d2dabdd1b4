package agent

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// watchedAgent is an agent whose watchdog looks every 5 ms.
func watchedAgent(t *testing.T, root string) (*Agent, *fakeServices) {
	t.Helper()
	a, fake := newTestAgent(t, root)
	a.opts.WatchTick = 5 * time.Millisecond
	return a, fake
}

func (s *session) heartbeat(interval time.Duration) {
	s.t.Helper()
	s.send("", protocol.OpHeartbeat, protocol.HeartbeatArgs{IntervalMS: interval.Milliseconds()})
}

// ended waits for the agent's Serve to return, and returns its error.
func (s *session) ended(within time.Duration) (error, bool) {
	select {
	case err := <-s.done:
		return err, true
	case <-time.After(within):
		return nil, false
	}
}

func lockHeld(root string) bool {
	_, err := os.Stat(filepath.Join(root, "lock.json"))
	return !errors.Is(err, fs.ErrNotExist)
}

// A client that falls silent after its heartbeats is taken for gone: the
// session ends and the lock is released, though its input never closed
// (as a WinRS shell's does not when its client dies).
func TestSilentControllerReleasesLock(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := watchedAgent(t, root)
	s := startSession(t, a)
	s.heartbeat(40 * time.Millisecond)
	s.call("l", protocol.OpLock, protocol.LockArgs{Operator: "ci@runner"}, nil)
	if !lockHeld(root) {
		t.Fatal("no lock after lock")
	}
	// Heartbeats keep the session: 300 ms with one every 20 ms.
	for range 15 {
		time.Sleep(20 * time.Millisecond)
		s.heartbeat(40 * time.Millisecond)
	}
	s.call("f", protocol.OpFacts, nil, nil)
	start := time.Now()
	err, done := s.ended(5 * time.Second)
	if !done {
		t.Fatal("the agent still serves a silent controller after 5 s")
	}
	if !errors.Is(err, errControllerGone) {
		t.Fatalf("Serve ended with %v, want errControllerGone", err)
	}
	if gone := time.Since(start); gone > time.Second {
		t.Errorf("took %s to notice a silence of 3 × 40 ms", gone)
	}
	if lockHeld(root) {
		t.Fatal("the lock outlived the session")
	}
}

// A client that never announced heartbeats is not watched: an old gsd
// keeps working with a new agent.
func TestUnwatchedSessionStays(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := watchedAgent(t, root)
	s := startSession(t, a)
	s.call("l", protocol.OpLock, protocol.LockArgs{}, nil)
	if _, done := s.ended(300 * time.Millisecond); done {
		t.Fatal("a session without heartbeats was ended")
	}
	s.call("f", protocol.OpFacts, nil, nil)
	s.close()
}

// The controller dying mid-upload: the stage is abandoned with nothing
// left of it, the running release is intact, the lock is free.
func TestSilenceMidUploadLeavesNothing(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := watchedAgent(t, root)
	s := startSession(t, a)
	path, content := activeSetup(t, s)
	s.heartbeat(40 * time.Millisecond)
	v2 := bytes.Repeat([]byte("v2-binary!"), 5000)
	s.send("st", protocol.OpStage, protocol.StageArgs{SHA256: digest(v2), Size: int64(len(v2)), Name: "api.exe", Encoding: protocol.EncodingNone})
	s.sendFrames(v2[:len(v2)/2], 1000, false)
	if _, done := s.ended(5 * time.Second); !done {
		t.Fatal("the agent still waits for the rest of an upload from a silent controller")
	}
	if lockHeld(root) {
		t.Fatal("the lock outlived the session")
	}
	if temps := tempFiles(t, root); len(temps) != 0 {
		t.Fatalf("half an upload left: %v", temps)
	}
	assertActiveIntact(t, root, path, content)
}

// The watchdog touches the lock while the agent holds it, so the next run
// can tell a live holder from a hung one.
func TestHeldLockIsTouched(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := watchedAgent(t, root)
	a.opts.WatchTick = time.Millisecond
	s := startSession(t, a)
	s.call("l", protocol.OpLock, protocol.LockArgs{}, nil)
	old := time.Now().Add(-time.Hour)
	lock := state.Layout{Root: root}.LockFile()
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the lock to be touched", func() bool {
		fi, err := os.Stat(lock)
		return err == nil && time.Since(fi.ModTime()) < state.LockTouchEvery+time.Second
	})
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	if f.Lock == nil || !f.Lock.Alive || time.Since(f.Lock.Heard) > state.LockTouchEvery+time.Second {
		t.Fatalf("facts lock %+v", f.Lock)
	}
	s.close()
}
