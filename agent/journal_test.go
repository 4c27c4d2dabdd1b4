package agent

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// wholeSpec is a release that sets everything a process sees, so tests
// can tell two releases apart by every attribute.
func wholeSpec(name, artifact, version, marker string) protocol.ServiceSpec {
	return protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeNative, Artifact: artifact, Version: version,
		DisplayName: "API " + marker, Description: "release " + marker,
		Args: []string{"-marker", marker}, Start: protocol.StartAuto,
		Account: protocol.Account{Name: `.\svc-` + name, Password: "pw-" + marker},
		Env:     map[string]string{"MARKER": marker, "TOKEN": "secret-" + marker},
		Files:   []protocol.FileSpec{{Name: "app.yaml", Content: []byte("marker: " + marker + "\n"), OnChange: "restart"}},
	}
}

// assertRuns checks that the fake SCM holds exactly release spec's
// settings, its file is on disk, and it runs.
func assertRuns(t *testing.T, root string, fake *fakeServices, spec protocol.ServiceSpec) {
	t.Helper()
	svc := fake.load()[spec.Name]
	if svc == nil {
		t.Fatalf("service %s is not installed", spec.Name)
	}
	cfg := svc.Config
	if cfg.DisplayName != spec.DisplayName || cfg.Description != spec.Description || !slices.Equal(cfg.Args, spec.Args) ||
		cfg.Account.Name != spec.Account.Name || len(cfg.Env) != len(spec.Env) {
		t.Errorf("SCM has %+v, want the settings of %s", cfg, spec.Version)
	}
	for k, v := range spec.Env {
		if cfg.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, cfg.Env[k], v)
		}
	}
	if pw := fake.passwords[spec.Name]; pw != spec.Account.Password {
		t.Errorf("SCM password %q, want %q", pw, spec.Account.Password)
	}
	for _, f := range spec.Files {
		got, err := os.ReadFile(filepath.Join(root, "services", spec.Name, "files", f.Name))
		if err != nil || !bytes.Equal(got, f.Content) {
			t.Errorf("file %s = %q %v, want %q", f.Name, got, err, f.Content)
		}
	}
	if svc.State != StateRunning {
		t.Errorf("service %s is %s, want running", spec.Name, svc.State)
	}
}

// killMidActivation applies v1, then activates v2 in a real agent process
// and kills it while v2's start hangs: v2 is switched in, the service is
// down.
func killMidActivation(t *testing.T, root, onInterrupt string) (v1, v2 protocol.ServiceSpec, id1, id2 string) {
	t.Helper()
	s, cmd := startHelper(t, root)
	art1 := s.stage("s1", "api.exe", []byte("binary one"), 10).SHA256
	art2 := s.stage("s2", "api.exe", []byte("binary two"), 10).SHA256
	v1 = wholeSpec("api", art1, "1.0", "one")
	v2 = wholeSpec("api", art2, "2.0", "two")
	v2.Args = append(v2.Args, "-hang-on-start")
	id1, _ = s.deploy("d1", v1, protocol.EffectStart)
	id2 = s.stageRelease("st2", v2)
	s.send("a2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id2, Effect: protocol.EffectRestart, OnInterrupt: onInterrupt})
	for {
		ev := s.next()
		if ev.Kind != protocol.EventProgress {
			t.Fatalf("the activation ended before the kill: %+v %+v", ev, ev.Error)
		}
		if strings.Contains(ev.Message, "starting api") {
			break
		}
	}
	kill(t, cmd)
	j, err := state.LoadJournal(state.Layout{Root: root})
	if err != nil || j == nil || j.From != id1 || j.To != id2 || !j.WasRunning {
		t.Fatalf("journal after the kill: %+v, %v", j, err)
	}
	return v1, v2, id1, id2
}

func TestKilledActivationReturnsToPreviousReleaseWhole(t *testing.T) {
	root := testfs.TempDir(t)
	v1, _, id1, id2 := killMidActivation(t, root, protocol.OnFailureRollback)
	a, fake := newTestAgent(t, root)
	// Facts, which never lock, show the pending activation.
	f, err := a.Facts()
	if err != nil || f.Journal == nil || f.Journal.To != id2 || f.Journal.From != id1 {
		t.Fatalf("facts journal: %+v %v", f.Journal, err)
	}
	if st := fake.load()["api"].State; st == StateRunning {
		t.Fatalf("the killed activation left api %s; the test needs it down", st)
	}
	s := startSession(t, a)
	progress := s.call("l", protocol.OpLock, protocol.LockArgs{Operator: "next"}, nil)
	if !anyMessage(progress, "returning service api to "+id1) {
		t.Fatalf("recovery not reported: %+v", progress)
	}
	s.call("f", protocol.OpFacts, nil, &f)
	s.close()
	assertRuns(t, root, fake, v1)
	if cur := f.Services[0].Current; cur == nil || cur.ID != id1 || cur.Version != "1.0" {
		t.Fatalf("current release %+v, want %s", cur, id1)
	}
	assertNoJournal(t, root)
}

func TestKilledActivationIsCompletedWhenAsked(t *testing.T) {
	root := testfs.TempDir(t)
	_, v2, _, id2 := killMidActivation(t, root, protocol.OnFailureComplete)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	var res protocol.JournalSummary
	progress := s.call("r", protocol.OpRecoverJournal, nil, &res)
	if !anyMessage(progress, "finishing the activation of "+id2) || res.To != id2 {
		t.Fatalf("recovery: %+v %+v", res, progress)
	}
	s.close()
	assertRuns(t, root, fake, v2)
	assertNoJournal(t, root)
}

func TestFailedStartReturnsToPreviousReleaseWhole(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	art1 := s.stage("s1", "api.exe", []byte("binary one"), 10).SHA256
	art2 := s.stage("s2", "api.exe", []byte("binary two"), 10).SHA256
	v1 := wholeSpec("api", art1, "1.0", "one")
	id1, _ := s.deploy("d1", v1, protocol.EffectStart)
	v2 := wholeSpec("api", art2, "2.0", "two")
	id2 := s.stageRelease("st2", v2)
	fake.failStart = "api"
	ev := s.callErr("a2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id2, Effect: protocol.EffectRestart}, protocol.CodeActivationFailed)
	if !strings.Contains(ev.Error.Message, "back on "+id1) {
		t.Fatalf("error %q does not say where the service is", ev.Error.Message)
	}
	fake.failStart = ""
	// The failed start left it stopped; the return to v1 started it.
	assertRuns(t, root, fake, v1)
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	if cur := f.Services[0].Current; cur == nil || cur.ID != id1 {
		t.Fatalf("current %+v, want %s", cur, id1)
	}
	s.close()
	assertNoJournal(t, root)
}

func TestActivateRefusedWhileJournalPending(t *testing.T) {
	root := testfs.TempDir(t)
	_, _, id1, _ := killMidActivation(t, root, protocol.OnFailureRollback)
	// A journal that cannot be recovered (its release is gone) keeps the
	// host from further activations instead of running over it.
	if err := atomicfile.RemoveTree(filepath.Join(root, "releases", id1)); err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	ev := s.callErr("a", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id1, Effect: protocol.EffectRestart}, protocol.CodeFailed)
	if !strings.Contains(ev.Error.Message, "recovering interrupted") {
		t.Fatalf("error %q", ev.Error.Message)
	}
	s.close()
	if j, _ := state.LoadJournal(state.Layout{Root: root}); j == nil {
		t.Fatal("the journal was dropped although nothing recovered it")
	}
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
