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
// but report, which is stopped and must stay so. It returns db's release.
func dependentChain(t *testing.T, s *session, fake *fakeServices) string {
	t.Helper()
	art := s.stage("st", "svc.exe", []byte("v1"), 10).SHA256
	db, _ := s.deploy("d-db", nativeSpec("db", art, "1"), protocol.EffectNone)
	api := nativeSpec("api", art, "1")
	api.DependsOn = []string{"DB"} // Windows compares names without case
	s.deploy("d-api", api, protocol.EffectNone)
	fake.Install("web", InstallConfig{BinaryPath: `C:\vendor\web.exe`, DependsOn: []string{"api"}})
	fake.Install("report", InstallConfig{BinaryPath: `C:\vendor\report.exe`, DependsOn: []string{"db"}})
	for _, n := range []string{"db", "api", "web"} {
		setState(t, fake, n, StateRunning)
	}
	fake.calls = nil
	return db
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
	db := dependentChain(t, s, fake)

	// The fake enforces the rule, as Windows does.
	if err := fake.Stop("db", 0); !errors.Is(err, errDependentServicesRunning) {
		t.Fatalf("the fake stopped db under running dependents: %v", err)
	}

	progress := s.call("stop", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "db", Release: db, Effect: protocol.EffectStop}, nil)
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
	if res := s.activate("start", "db", db, protocol.EffectStart); !res.Running || res.Changed {
		t.Fatalf("start: %+v", res)
	}
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

// Activating a new release with a restart stops the running service, so
// it stops and restarts its dependents too.
func TestRestartActivationRestartsDependents(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	dependentChain(t, s, fake)
	v2 := s.stage("st2", "svc.exe", []byte("v2"), 10).SHA256
	if _, res := s.deploy("d2", nativeSpec("db", v2, "2"), protocol.EffectRestart); !res.Changed || !res.Running {
		t.Fatalf("activation: %+v", res)
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
	db := dependentChain(t, s, fake)
	s.activate("stop", "db", db, protocol.EffectStop)
	fake.failStart = "api"
	// db runs its release whole; the dependent's failure is reported,
	// not undone by stopping db again.
	var res protocol.ActivateResult
	progress := s.call("start", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "db", Release: db, Effect: protocol.EffectStart}, &res)
	if !res.Running || !anyMessage(progress, "start api") {
		t.Fatalf("result %+v, progress %+v: want db running and the dependent named", res, progress)
	}
	// The failure is not recorded for every later start: api still does
	// not start, and db's next start succeeds all the same. (web depends
	// on api; the fake, unlike Windows, does not start api for it, so it
	// runs alone here.)
	if got := recorded(t, root, "db"); slices.Contains(got, "api") {
		t.Errorf("the failed dependent is still recorded: %v", got)
	}
	if res := s.activate("start2", "db", db, protocol.EffectStart); !res.Running {
		t.Fatalf("the next start: %+v", res)
	}
	if fake.load()["db"].State != StateRunning {
		t.Fatalf("db: %s", fake.load()["db"].State)
	}
	if got := recorded(t, root, "db"); got != nil {
		t.Errorf("still recorded: %v", got)
	}
	s.close()
}

// An activation with a restart killed between its stop and its start
// leaves the dependents stopped; recovering the journal brings them back,
// whether it completes the activation or returns to the release before.
func TestInterruptedRestartStartsDependentsAgain(t *testing.T) {
	for _, policy := range []string{protocol.OnFailureComplete, protocol.OnFailureRollback} {
		t.Run(policy, func(t *testing.T) {
			root := testfs.TempDir(t)
			s, cmd := startHelper(t, root)
			v1 := s.stage("s1", "svc.exe", []byte("v1"), 10).SHA256
			v2 := s.stage("s2", "svc.exe", []byte("v2"), 10).SHA256
			id1, _ := s.deploy("d1", nativeSpec("svc", v1, "1"), protocol.EffectNone)
			fake := newFakeServices(root)
			fake.Install("dep", InstallConfig{BinaryPath: `C:\vendor\dep.exe`, DependsOn: []string{"svc"}})
			setState(t, fake, "svc", StateRunning)
			setState(t, fake, "dep", StateRunning)
			spec2 := nativeSpec("svc", v2, "2")
			spec2.Args = append(spec2.Args, "-hang-on-start") // the helper's start never returns
			id2 := s.stageRelease("st2", spec2)
			s.send("a2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "svc", Release: id2, Effect: protocol.EffectRestart, OnInterrupt: policy})
			for {
				ev := s.next()
				if ev.Kind != protocol.EventProgress {
					t.Fatalf("the activation ended before the kill: %+v %+v", ev, ev.Error)
				}
				if strings.Contains(ev.Message, "starting svc") {
					break
				}
			}
			kill(t, cmd)
			if got := states(fake, "svc", "dep"); got != "svc=stopped dep=stopped" {
				t.Fatalf("after the kill: %s", got)
			}

			a, _ := newTestAgent(t, root)
			next := startSession(t, a)
			var f protocol.Facts
			next.call("r", protocol.OpRecoverJournal, nil, nil)
			next.call("f", protocol.OpFacts, nil, &f)
			next.close()
			if got := states(fake, "svc", "dep"); got != "svc=running dep=running" {
				t.Fatalf("after recovery: %s", got)
			}
			want := id2
			if policy == protocol.OnFailureRollback {
				want = id1
			}
			if cur := f.Services[0].Current; f.Services[0].Name != "svc" || cur == nil || cur.ID != want {
				t.Fatalf("after recovery %s runs %+v, want %s", f.Services[0].Name, cur, want)
			}
			if got := recorded(t, root, "svc"); got != nil {
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
