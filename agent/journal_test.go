package agent

import (
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

func writeStep(name, content string) protocol.Request {
	return protocol.Request{Op: protocol.OpWriteFile, Args: protocol.MustArgs(protocol.WriteFileArgs{Service: "api", Name: name, Content: []byte(content)})}
}

func deleteStep(name string) protocol.Request {
	return protocol.Request{Op: protocol.OpDeleteFile, Args: protocol.MustArgs(protocol.DeleteFileArgs{Service: "api", Name: name})}
}

func managedFile(root, name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(root, "services", "api", "files", name))
	return string(b), err == nil
}

// killMidApply starts an apply in a real agent process and kills it while
// step 3 (starting the "hang" service) is in progress, after steps 0-2
// were journaled as done.
func killMidApply(t *testing.T, root, policy string) {
	t.Helper()
	s, cmd := startHelper(t, root)
	art := s.stage("s", "hang.exe", []byte("hang"), 10).SHA256
	s.call("e", protocol.OpEnsureService, nativeSpec("hang", art, "1"), nil)
	steps := []protocol.Request{
		writeStep("a.txt", "A"),
		writeStep("b.txt", "B"),
		{Op: protocol.OpStop, Args: protocol.MustArgs(protocol.ServiceRef{Service: "hang"})},
		{Op: protocol.OpStart, Args: protocol.MustArgs(protocol.ServiceRef{Service: "hang"})},
		writeStep("c.txt", "C"),
	}
	rollback := []protocol.Request{deleteStep("a.txt"), deleteStep("b.txt")}
	s.send("apply-1", protocol.OpApply, protocol.ApplyArgs{Steps: steps, Rollback: rollback, OnInterrupt: policy})
	for {
		ev := s.next()
		if ev.Kind != protocol.EventProgress {
			t.Fatalf("apply ended before the kill: %+v %+v", ev, ev.Error)
		}
		var p protocol.StepProgress
		if ev.Result != nil && jsonInto(ev.Result, &p) && p.Step == 3 && p.Phase == "started" {
			break
		}
	}
	kill(t, cmd)
	j, err := state.LoadJournal(state.Layout{Root: root})
	if err != nil || j == nil || j.Done != 3 {
		t.Fatalf("journal after kill: %+v, %v", j, err)
	}
}

func TestInterruptedApplyIsCompletedByNextRun(t *testing.T) {
	root := testfs.TempDir(t)
	killMidApply(t, root, protocol.OnInterruptComplete)
	if _, ok := managedFile(root, "c.txt"); ok {
		t.Fatal("step 4 ran before the kill")
	}
	a, fake := newTestAgent(t, root)
	// Facts, which never lock, show the pending apply.
	f, err := a.Facts()
	if err != nil || f.Journal == nil || f.Journal.Done != 3 || f.Journal.Steps != 5 {
		t.Fatalf("facts journal: %+v %v", f.Journal, err)
	}
	s := startSession(t, a)
	progress := s.call("l", protocol.OpLock, protocol.LockArgs{Operator: "next"}, nil)
	if !anyMessage(progress, "completing interrupted apply apply-1 from step 3") {
		t.Fatalf("recovery not reported: %+v", progress)
	}
	s.close()
	for name, want := range map[string]string{"a.txt": "A", "b.txt": "B", "c.txt": "C"} {
		if got, _ := managedFile(root, name); got != want {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
	}
	if fake.load()["hang"].State != StateRunning {
		t.Fatal("interrupted start was not redone")
	}
	assertNoJournal(t, root)
}

func TestInterruptedApplyIsRolledBackByNextRun(t *testing.T) {
	root := testfs.TempDir(t)
	killMidApply(t, root, protocol.OnInterruptRollback)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	var res protocol.ApplyResult
	progress := s.call("r", protocol.OpRecoverJournal, nil, &res)
	if !anyMessage(progress, "rolling back interrupted apply apply-1") {
		t.Fatalf("rollback not reported: %+v", progress)
	}
	s.close()
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		if _, ok := managedFile(root, name); ok {
			t.Fatalf("%s survived the rollback", name)
		}
	}
	assertNoJournal(t, root)
}

func TestFailedStepRollsBack(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	s.send("ap", protocol.OpApply, protocol.ApplyArgs{
		Steps: []protocol.Request{
			writeStep("a.txt", "A"),
			{Op: protocol.OpStart, Args: protocol.MustArgs(protocol.ServiceRef{Service: "missing"})},
			writeStep("never.txt", "N"),
		},
		Rollback: []protocol.Request{deleteStep("a.txt")},
	})
	ev, progress := s.wait("ap")
	if ev.Kind != protocol.EventError || ev.Error.Code != protocol.CodeNotFound || !strings.Contains(ev.Error.Message, "rolled back 1 step") {
		t.Fatalf("got %+v %+v", ev, ev.Error)
	}
	var phases []string
	for _, p := range progress {
		var sp protocol.StepProgress
		if jsonInto(p.Result, &sp) {
			phases = append(phases, sp.Phase)
		}
	}
	if strings.Join(phases, ",") != "started,done,started,failed,rollback" {
		t.Fatalf("phases %v", phases)
	}
	s.close()
	if _, ok := managedFile(root, "a.txt"); ok {
		t.Fatal("a.txt survived the rollback")
	}
	if _, ok := managedFile(root, "never.txt"); ok {
		t.Fatal("step after the failure ran")
	}
	assertNoJournal(t, root)
}

func TestApplyWithoutRollbackCompletes(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	var res protocol.ApplyResult
	s.call("ap", protocol.OpApply, protocol.ApplyArgs{Steps: []protocol.Request{writeStep("a.txt", "A"), writeStep("b.txt", "B")}}, &res)
	if res.Completed != 2 || res.RolledBack {
		t.Fatalf("%+v", res)
	}
	s.close()
	assertNoJournal(t, root)
}

func assertNoJournal(t *testing.T, root string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "journal.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("journal still present: %v", err)
	}
}

func anyMessage(evs []protocol.Event, substr string) bool {
	for _, e := range evs {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}
