package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/winsec"
)

func serviceFacts(t *testing.T, s *session, id, name string) protocol.ServiceFacts {
	t.Helper()
	var f protocol.Facts
	s.call(id, protocol.OpFacts, nil, &f)
	for _, sf := range f.Services {
		if sf.Name == name {
			return sf
		}
	}
	t.Fatalf("%s not in facts", name)
	return protocol.ServiceFacts{}
}

// The agent keeps a salted hash of the password it last handed to the
// service manager, and reports it in facts, so that a plan can tell a
// changed password without anyone sending one. The password itself, and
// its unsalted hash, reach no file.
func TestPasswordIsKeptOnlyAsSaltedHash(t *testing.T) {
	const pw1, pw2, pw3 = "first-Pa55word", "second-Pa55word", "third-Pa55word"
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\svc-api`, Password: pw1}
	id1, _ := s.deploy("d1", spec, protocol.EffectNone)
	f := serviceFacts(t, s, "f1", "api")
	if f.Password == nil || f.Password.Salt == "" || !f.Password.Matches(pw1) || f.Password.Matches(pw2) {
		t.Fatalf("password facts %+v", f.Password)
	}
	first := *f.Password

	// The same password again keeps the record, so facts stay as they were.
	if id, _ := s.deploy("d2", spec, protocol.EffectNone); id != id1 {
		t.Fatalf("the same release got a new id %s, was %s", id, id1)
	}
	if f = serviceFacts(t, s, "f2", "api"); f.Password == nil || *f.Password != first {
		t.Fatalf("an unchanged password changed the record: %+v, was %+v", f.Password, first)
	}

	// A new password reaches the service manager and the record, under a
	// new salt.
	spec.Account.Password = pw2
	id2, _ := s.deploy("d3", spec, protocol.EffectNone)
	if id2 == id1 {
		t.Fatal("a new password did not make a new release")
	}
	if fake.passwords["api"] != pw2 {
		t.Fatalf("the service manager was not given the new password")
	}
	if f = serviceFacts(t, s, "f3", "api"); f.Password == nil || !f.Password.Matches(pw2) || f.Password.Salt == first.Salt {
		t.Fatalf("after the change: %+v", f.Password)
	}
	second := *f.Password
	// A release with a third password is staged, and its activation dies
	// before it changed anything.
	spec.Account.Password = pw3
	id3 := s.stageRelease("st3", spec)
	s.close()

	// The next agent returns the service to the release before, whose
	// password it has only sealed: the manager is handed pw2 again, never
	// pw3, and the record still matches (and keeps its salt).
	j := &state.Journal{ID: "old", Kind: protocol.KindService, Name: "api", From: id2, To: id3, Effect: protocol.EffectRestart, OnInterrupt: protocol.OnFailureRollback}
	if err := j.Save(state.Layout{Root: root}); err != nil {
		t.Fatal(err)
	}
	a2, fake2 := newTestAgent(t, root)
	s2 := startSession(t, a2)
	s2.call("r", protocol.OpRecoverJournal, nil, nil)
	if got := fake2.passwords["api"]; got != pw2 {
		t.Fatalf("the recovery handed password %q, want the release's own", got)
	}
	if f = serviceFacts(t, s2, "f4", "api"); f.Password == nil || *f.Password != second || f.Current.ID != id2 {
		t.Fatalf("after the recovery the record no longer matches the manager's password: %+v, current %+v", f.Password, f.Current)
	}

	// Another account without a password: the record no longer applies.
	spec.Account = protocol.Account{Name: "LocalService"}
	s2.deploy("d4", spec, protocol.EffectNone)
	if f = serviceFacts(t, s2, "f5", "api"); f.Password != nil {
		t.Fatalf("password record kept for another account: %+v", f.Password)
	}
	s2.close()

	for _, name := range listFiles(t, root) {
		b, _ := os.ReadFile(filepath.Join(root, name))
		for _, pw := range []string{pw1, pw2, pw3} {
			if bytes.Contains(b, []byte(pw)) || bytes.Contains(b, []byte(digest([]byte(pw)))) {
				t.Errorf("%s holds a password or its unsalted hash", name)
			}
		}
	}
}

// Removing a service's recovery block clears the failure actions on the
// host: those gsd set, and those an adopted service came with.
func TestRemovedRecoveryBlockClearsActions(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	s.deploy("d1", spec, protocol.EffectNone)
	if r := fake.load()["api"].Recovery; r == nil || len(r.Actions) != 1 {
		t.Fatalf("recovery not set: %+v", r)
	}
	spec.Recovery = nil
	_, res := s.deploy("d2", spec, protocol.EffectNone)
	if r := fake.load()["api"].Recovery; r == nil || len(r.Actions) != 0 || r.OnNonCrash || r.ResetAfterMS != 0 {
		t.Fatalf("recovery left on the host: %+v", r)
	}
	if !res.Changed {
		t.Errorf("clearing recovery did not count as a change")
	}
	f := serviceFacts(t, s, "f", "api")
	if f.Recovery == nil || len(f.Recovery.Actions) != 0 || f.LastApplied.Recovery != nil {
		t.Fatalf("facts: recovery %+v, last applied %+v", f.Recovery, f.LastApplied.Recovery)
	}

	vendor := &protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "reboot", DelayMS: 60000}}, OnNonCrash: true}
	fake.Install("vendor", InstallConfig{BinaryPath: `C:\vendor\v.exe`})
	// Its vendor's installer held the shutdown privilege, as Windows requires.
	fake.sec.WithPrivileges(func() error { _, err := fake.SetRecovery("vendor", *vendor); return err }, winsec.ShutdownPrivilege)
	adopt := nativeSpec("vendor", art, "1")
	adopt.Recovery, adopt.Adopt = nil, true
	s.deploy("d3", adopt, protocol.EffectNone)
	if r := fake.load()["vendor"].Recovery; r == nil || len(r.Actions) != 0 || r.OnNonCrash {
		t.Fatalf("the adopted service kept its actions: %+v", r)
	}
	s.close()
}

// Where the host cannot report recovery (Wine), the agent records that it
// cleared it, and facts say so from agent state, so the plan settles.
func TestClearedRecoveryIsRecordedWhereUnreadable(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	fake.gaps = map[string]string{"recovery": "not readable on this host: Invalid level"}
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	s.deploy("d1", spec, protocol.EffectNone)
	spec.Recovery = nil
	// The second time, the release is the current one already.
	for _, id := range []string{"e2", "e3"} {
		s.deploy(id, spec, protocol.EffectNone)
		f := serviceFacts(t, s, "f"+id, "api")
		if f.Recovery == nil || len(f.Recovery.Actions) != 0 || f.Sources["recovery"] != protocol.SourceAgentState {
			t.Fatalf("%s: recovery %+v sources %v", id, f.Recovery, f.Sources)
		}
	}
	if r := fake.load()["api"].Recovery; r == nil || len(r.Actions) != 0 {
		t.Fatalf("recovery left on the host: %+v", r)
	}
	s.close()
}
