package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

func setState(t *testing.T, fake *fakeServices, name, st string) {
	t.Helper()
	if _, err := fake.update(name, func(s *fakeService) error { s.State = st; return nil }); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func states(fake *fakeServices, names ...string) string {
	m := fake.load()
	var out []string
	for _, n := range names {
		out = append(out, n+"="+m[n].State)
	}
	return strings.Join(out, " ")
}

// dependentChain sets up db (gsd's), api (gsd's, depends on db), web (not
// gsd's, depends on api) and report (not gsd's, depends on db). All run
// but report, which is stopped and must stay so.
func dependentChain(t *testing.T, s *session, fake *fakeServices) string {
	t.Helper()
	art := s.stage("st", "svc.exe", []byte("v1"), 10).SHA256
	s.call("e-db", protocol.OpEnsureService, nativeSpec("db", art, "1"), nil)
	api := nativeSpec("api", art, "1")
	api.DependsOn = []string{"DB"} // Windows compares names without case
	s.call("e-api", protocol.OpEnsureService, api, nil)
	fake.Install("web", InstallConfig{BinaryPath: `C:\vendor\web.exe`, DependsOn: []string{"api"}})
	fake.Install("report", InstallConfig{BinaryPath: `C:\vendor\report.exe`, DependsOn: []string{"db"}})
	for _, n := range []string{"db", "api", "web"} {
		setState(t, fake, n, StateRunning)
	}
	fake.calls = nil
	return art
}

func recorded(t *testing.T, root, service string) []string {
	t.Helper()
	st, err := state.Load(state.Layout{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return st.StoppedDependentsOf(service)
}

// Windows refuses to stop a service whose dependents run. Stopping one
// stops them first (the deepest first), and the next start brings back
// exactly those that ran, in reverse order.
func TestStopAndStartKeepDependentsAsTheyWere(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	dependentChain(t, s, fake)

	// The fake enforces the rule, as Windows does.
	if err := fake.Stop("db", 0); !errors.Is(err, errDependentServicesRunning) {
		t.Fatalf("the fake stopped db under running dependents: %v", err)
	}

	progress := s.call("stop", protocol.OpStop, protocol.ServiceRef{Service: "db"}, nil)
	if got := states(fake, "db", "api", "web", "report"); got != "db=stopped api=stopped web=stopped report=stopped" {
		t.Fatalf("after stop: %s", got)
	}
	if want := []string{"stop web", "stop api", "stop db"}; !slices.Equal(fake.calls, want) {
		t.Fatalf("stop order %v, want %v", fake.calls, want)
	}
	if !anyMessage(progress, "stopping web first: it depends on db") {
		t.Errorf("the dependents' stop was not reported: %+v", progress)
	}
	if got := recorded(t, root, "db"); !slices.Equal(got, []string{"web", "api"}) {
		t.Fatalf("recorded dependents %v", got)
	}

	fake.calls = nil
	s.call("start", protocol.OpStart, protocol.ServiceRef{Service: "db"}, nil)
	if got := states(fake, "db", "api", "web", "report"); got != "db=running api=running web=running report=stopped" {
		t.Fatalf("after start: %s", got)
	}
	if want := []string{"start db", "start api", "start web"}; !slices.Equal(fake.calls, want) {
		t.Fatalf("start order %v, want %v", fake.calls, want)
	}
	if got := recorded(t, root, "db"); got != nil {
		t.Fatalf("dependents still recorded after the start: %v", got)
	}
	s.close()
}

// A release switch stops the running service, so it stops and restarts
// its dependents too.
func TestSwitchReleaseRestartsDependents(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	dependentChain(t, s, fake)
	v2 := s.stage("st2", "svc.exe", []byte("v2"), 10).SHA256
	var sw switchResult
	s.call("sw", protocol.OpSwitchRelease, protocol.SwitchArgs{Service: "db", Artifact: v2, Version: "2"}, &sw)
	if !sw.Changed || !sw.Restarted {
		t.Fatalf("switch: %+v", sw)
	}
	if got := states(fake, "db", "api", "web", "report"); got != "db=running api=running web=running report=stopped" {
		t.Fatalf("after switch: %s", got)
	}
	if want := []string{"stop web", "stop api", "stop db", "start db", "start api", "start web"}; !slices.Equal(fake.calls, want) {
		t.Fatalf("calls %v, want %v", fake.calls, want)
	}
	s.close()
}

// Deleting a service stops its dependents, which cannot start without it;
// they are named, and not remembered for a start that will never come.
func TestDeleteStopsDependentsAndSaysSo(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	dependentChain(t, s, fake)
	progress := s.call("del", protocol.OpDeleteService, protocol.ServiceRef{Service: "api"}, nil)
	if fake.load()["api"] != nil || fake.load()["web"].State != StateStopped || fake.load()["db"].State != StateRunning {
		t.Fatalf("after delete: api %+v, %s", fake.load()["api"], states(fake, "web", "db"))
	}
	if !anyMessage(progress, "depended on it stay stopped: web") {
		t.Errorf("the stopped dependent was not named: %+v", progress)
	}
	if got := recorded(t, root, "api"); got != nil {
		t.Errorf("dependents of a deleted service are still recorded: %v", got)
	}
	s.close()
}

// A dependent that does not start again is reported, and forgotten: the
// next start of the service must not fail on it forever.
func TestDependentThatFailsToStartIsReported(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	dependentChain(t, s, fake)
	s.call("stop", protocol.OpStop, protocol.ServiceRef{Service: "db"}, nil)
	fake.failStart = "api"
	ev := s.callErr("start", protocol.OpStart, protocol.ServiceRef{Service: "db"}, protocol.CodeFailed)
	if !strings.Contains(ev.Error.Message, "start api") {
		t.Fatalf("error %q does not name the dependent", ev.Error.Message)
	}
	// web depends on api; the fake, unlike Windows, does not start api
	// for it, so it runs alone here. What matters: db runs, and the
	// failure is not recorded for every later start.
	if fake.load()["db"].State != StateRunning {
		t.Fatalf("db: %s", fake.load()["db"].State)
	}
	if got := recorded(t, root, "db"); got != nil {
		t.Errorf("still recorded: %v", got)
	}
	s.close()
}

// A journaled restart killed between its stop and its start leaves the
// dependents stopped; recovering the journal brings them back, whether it
// completes the apply or rolls it back.
func TestInterruptedRestartStartsDependentsAgain(t *testing.T) {
	for _, policy := range []string{protocol.OnInterruptComplete, protocol.OnInterruptRollback} {
		t.Run(policy, func(t *testing.T) {
			root := testfs.TempDir(t)
			s, cmd := startHelper(t, root)
			art := s.stage("s", "hang.exe", []byte("hang"), 10).SHA256
			s.call("e", protocol.OpEnsureService, nativeSpec("hang", art, "1"), nil)
			fake := newFakeServices(root)
			fake.Install("dep", InstallConfig{BinaryPath: `C:\vendor\dep.exe`, DependsOn: []string{"hang"}})
			setState(t, fake, "hang", StateRunning)
			setState(t, fake, "dep", StateRunning)
			ref := protocol.MustArgs(protocol.ServiceRef{Service: "hang"})
			s.send("ap", protocol.OpApply, protocol.ApplyArgs{
				Steps:       []protocol.Request{{Op: protocol.OpStop, Args: ref}, {Op: protocol.OpStart, Args: ref}},
				Rollback:    []protocol.Request{{Op: protocol.OpStart, Args: ref}},
				OnInterrupt: policy,
			})
			for {
				ev := s.next()
				if ev.Kind != protocol.EventProgress {
					t.Fatalf("apply ended before the kill: %+v %+v", ev, ev.Error)
				}
				var p protocol.StepProgress
				if jsonInto(ev.Result, &p) && p.Step == 1 && p.Phase == "started" {
					break // the helper's start of "hang" never returns
				}
			}
			kill(t, cmd)
			if got := states(fake, "hang", "dep"); got != "hang=stopped dep=stopped" {
				t.Fatalf("after the kill: %s", got)
			}

			a, _ := newTestAgent(t, root)
			next := startSession(t, a)
			next.call("r", protocol.OpRecoverJournal, nil, nil)
			next.close()
			if got := states(fake, "hang", "dep"); got != "hang=running dep=running" {
				t.Fatalf("after recovery: %s", got)
			}
			if got := recorded(t, root, "hang"); got != nil {
				t.Errorf("still recorded: %v", got)
			}
			assertNoJournal(t, root)
		})
	}
}

// An agent that died after stopping dependents, with the service itself
// still running (its stop failed, or the start had happened), leaves them
// for the next agent, which starts them once it takes the lock.
func TestLockStartsDependentsADeadAgentLeftStopped(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	dependentChain(t, s, fake)
	s.close()
	setState(t, fake, "web", StateStopped)
	setState(t, fake, "api", StateStopped)
	l := state.Layout{Root: root}
	st, _ := state.Load(l)
	st.RecordStoppedDependents("db", []string{"web", "api"})
	if err := st.Save(l); err != nil {
		t.Fatal(err)
	}

	a2, _ := newTestAgent(t, root)
	s2 := startSession(t, a2)
	progress := s2.call("l", protocol.OpLock, protocol.LockArgs{Operator: "next"}, nil)
	s2.close()
	if got := states(fake, "db", "api", "web"); got != "db=running api=running web=running" {
		t.Fatalf("after lock: %s", got)
	}
	if !anyMessage(progress, "starting api again") {
		t.Errorf("not reported: %+v", progress)
	}
	if got := recorded(t, root, "db"); got != nil {
		t.Errorf("still recorded: %v", got)
	}
}
