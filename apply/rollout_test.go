package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// upgradePlan replaces service "api" (1.0, release r-api-old, -> 2.0) on
// hosts web1..webN with a restart, in the given rollout (one host a batch
// unless it says otherwise), gated by an HTTP check.
func upgradePlan(t *testing.T, n int, ro plan.Rollout) *plan.Plan {
	p := newPlan()
	up := addArtifact(t, p, "MZ-api-2.0", "api")
	var names []string
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("web%d", i)
		names = append(names, h)
		s := svcStep("api", plan.ActionReplace, protocol.EffectRestart, "r-api-old")
		s.OldVersion, s.Version, s.Restart = "1.0", "2.0", true
		addHost(p, h, []plan.Upload{up}, s)
	}
	ro.Address, ro.Service, ro.Gated = "service.api", "api", true
	ro.Health = &protocol.HealthCheck{HTTP: "http://127.0.0.1:8080/healthz", TimeoutMS: 10000, IntervalMS: 100}
	if ro.Batches == nil {
		for _, h := range names {
			ro.Batches = append(ro.Batches, []string{h})
		}
	}
	p.Rollouts = []*plan.Rollout{&ro}
	return p
}

const (
	activateNew = "activate api@r-api-new restart"
	activateOld = "activate api@r-api-old restart"
)

// count is how many operations of host are op.
func (f *fleet) count(host, op string) int {
	n := 0
	for _, o := range f.ops(host) {
		if o == op {
			n++
		}
	}
	return n
}

// The second batch fails its health check: the rollout stops there, that
// host is switched back to the release it ran (r-api-old, restarted) and
// checked again, the first host keeps the new release, the third is never
// touched, and the report says which host, which check and what the
// service printed.
func TestHealthFailureStopsRolloutAndRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name, sick string
		healthy    bool
	}{
		{"still unhealthy after", "api", false},
		{"healthy after", "api@r-api-new", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := upgradePlan(t, 3, plan.Rollout{AutoRollback: true, RollbackScope: "batch"})
			f := newFleet()
			f.sick["web2"] = []string{tc.sick}
			rec := &recorder{}
			out := Execute(context.Background(), p, f.dial, Options{Parallelism: 3, Hooks: rec})
			if !out.Failed() {
				t.Fatal("the run did not fail")
			}
			rep := out.Rollouts[0]
			if !rep.Stopped || rep.BatchesDone != 2 || strings.Join(rep.Untouched, ",") != "web3" || len(rep.Failures) != 1 || len(rep.AlsoRolledBack) != 0 {
				t.Fatalf("report %+v", rep)
			}
			fl := rep.Failures[0]
			if fl.Host != "web2" || fl.Phase != "health" || fl.Err != "http check failed after 1.5s and 5 probes: HTTP 503" ||
				fl.Health == nil || len(fl.Health.Output) != 1 || fl.Health.Output[0] != "panic: version 2 is broken" {
				t.Errorf("failure %+v", fl)
			}
			wantNote := "switched back to 1.0 (release r-api-old) and healthy"
			if !tc.healthy {
				wantNote = "switched back to 1.0 (release r-api-old), still unhealthy: http check failed after 1.5s and 5 probes: HTTP 503"
			}
			if fl.Rollback != wantNote || fl.RolledBackHealthy != tc.healthy {
				t.Errorf("rollback %q healthy %v, want %q", fl.Rollback, fl.RolledBackHealthy, wantNote)
			}
			if got, want := f.joined("web2"), "lock,upload app.exe,stage_release api,"+activateNew+",health api,"+activateOld+",health api,unlock,close"; got != want {
				t.Errorf("web2 operations\n%s\nwant\n%s", got, want)
			}
			if got, want := f.joined("web1"), "lock,upload app.exe,stage_release api,"+activateNew+",health api,unlock,close"; got != want {
				t.Errorf("web1 operations\n%s\nwant\n%s", got, want)
			}
			if f.touched("web3") {
				t.Errorf("web3 was touched: %s", f.joined("web3"))
			}
			// The rollback's own check is the rollout's, too.
			for _, h := range args[protocol.HealthArgs](t, f.conn(t, "web2"), protocol.OpHealth) {
				if h.Check != *p.Rollouts[0].Health {
					t.Errorf("health check %+v", h.Check)
				}
			}
			if r := out.Results; r[0].Err != nil || r[1].Err == nil || !strings.Contains(r[1].Err.Error(), "host web2: service.api: http check failed") ||
				r[2].Err == nil || !strings.Contains(r[2].Err.Error(), "host web3: service.api not changed") {
				t.Errorf("results %+v", r)
			}
			if i, j := slices.Index(rec.events, "rollingback web2 service.api"), slices.Index(rec.events, "rolledback web2 service.api ok"); i < 0 || j < i {
				t.Errorf("events %v", rec.events)
			}
		})
	}
}

// A failing canary leaves every other host untouched.
func TestFailingCanaryTouchesNoOtherHost(t *testing.T) {
	p := upgradePlan(t, 3, plan.Rollout{Canary: true, Batches: [][]string{{"web1"}, {"web2", "web3"}}, AutoRollback: true})
	f := newFleet()
	f.sick["web1"] = []string{"api@r-api-new"}
	out := Execute(context.Background(), p, f.dial, Options{Parallelism: 3})
	rep := out.Rollouts[0]
	if !out.Failed() || !rep.Stopped || rep.BatchesDone != 1 || strings.Join(rep.Untouched, ",") != "web2,web3" {
		t.Fatalf("outcome %+v", out.Rollouts)
	}
	if f.count("web1", activateOld) != 1 || !rep.Failures[0].RolledBackHealthy {
		t.Errorf("the canary was not switched back: %s, %+v", f.joined("web1"), rep.Failures)
	}
	for i, h := range []string{"web1", "web2", "web3"} {
		if i > 0 && f.touched(h) {
			t.Errorf("%s touched after the canary failed: %s", h, f.joined(h))
		}
		if out.Results[i].Host != h || out.Results[i].Err == nil {
			t.Errorf("%s: no error saying it failed or was left alone: %+v", h, out.Results[i])
		}
	}
}

// Within max_failures the rollout goes on and the failed host is still
// switched back; past it, rollback_scope "batch" switches back the failing
// batch whole and "all" every host the rollout changed; without
// auto_rollback nothing is switched back.
func TestMaxFailuresAndRollbackScope(t *testing.T) {
	t.Run("within max_failures", func(t *testing.T) {
		p := upgradePlan(t, 3, plan.Rollout{MaxFailures: 1, AutoRollback: true})
		f := newFleet()
		f.sick["web1"] = []string{"api@r-api-new"}
		out := Execute(context.Background(), p, f.dial, Options{})
		rep := out.Rollouts[0]
		if rep.Stopped || rep.BatchesDone != 3 || len(rep.Failures) != 1 || !f.touched("web3") {
			t.Fatalf("one failure within max_failures 1 stopped the rollout: %+v", rep)
		}
		if f.count("web1", activateOld) != 1 || rep.Failures[0].Rollback != "switched back to 1.0 (release r-api-old) and healthy" {
			t.Errorf("the failed host was not switched back: %s, %+v", f.joined("web1"), rep.Failures[0])
		}
		for _, h := range []string{"web2", "web3"} {
			if f.count(h, activateOld) != 0 {
				t.Errorf("%s switched back: %s", h, f.joined(h))
			}
		}
		if !out.Failed() || out.Results[0].Err == nil || out.Results[1].Err != nil || out.Results[2].Err != nil {
			t.Errorf("results %+v", out.Results)
		}
	})

	t.Run("scope all", func(t *testing.T) {
		p := upgradePlan(t, 3, plan.Rollout{AutoRollback: true, RollbackScope: "all"})
		f := newFleet()
		f.sick["web2"] = []string{"api@r-api-new"}
		out := Execute(context.Background(), p, f.dial, Options{})
		rep := out.Rollouts[0]
		for _, h := range []string{"web1", "web2"} {
			if f.count(h, activateOld) != 1 {
				t.Errorf("%s not switched back once: %s", h, f.joined(h))
			}
		}
		if f.touched("web3") || !rep.Stopped {
			t.Errorf("%+v, web3 %s", rep, f.joined("web3"))
		}
		if also := rep.AlsoRolledBack; len(also) != 1 || also[0] != "web1: switched back to 1.0 (release r-api-old) and healthy" {
			t.Errorf("the healthy host switched back is not reported: %q", also)
		}
	})

	t.Run("scope batch", func(t *testing.T) {
		p := upgradePlan(t, 3, plan.Rollout{AutoRollback: true, Batches: [][]string{{"web1"}, {"web2", "web3"}}})
		f := newFleet()
		f.sick["web3"] = []string{"api@r-api-new"}
		out := Execute(context.Background(), p, f.dial, Options{Parallelism: 2})
		rep := out.Rollouts[0]
		if f.count("web1", activateOld) != 0 || f.count("web2", activateOld) != 1 || f.count("web3", activateOld) != 1 {
			t.Errorf("not the failing batch alone was switched back:\n%s", strings.Join(f.log, "\n"))
		}
		if also := rep.AlsoRolledBack; len(also) != 1 || !strings.HasPrefix(also[0], "web2: switched back") {
			t.Errorf("also rolled back %q", also)
		}
	})

	// A host switched back within max_failures runs its old release
	// already: when a later batch passes the limit, scope "all" must not
	// restart it again nor report it as a healthy host switched back.
	t.Run("scope all after a tolerated failure", func(t *testing.T) {
		p := upgradePlan(t, 3, plan.Rollout{MaxFailures: 1, AutoRollback: true, RollbackScope: "all"})
		f := newFleet()
		f.sick["web1"] = []string{"api@r-api-new"}
		f.sick["web3"] = []string{"api@r-api-new"}
		out := Execute(context.Background(), p, f.dial, Options{})
		rep := out.Rollouts[0]
		if !rep.Stopped || len(rep.Failures) != 2 {
			t.Fatalf("report %+v", rep)
		}
		for _, h := range []string{"web1", "web2", "web3"} {
			if n := f.count(h, activateOld); n != 1 {
				t.Errorf("%s switched back %d times: %s", h, n, f.joined(h))
			}
		}
		if also := rep.AlsoRolledBack; len(also) != 1 || !strings.HasPrefix(also[0], "web2: switched back") {
			t.Errorf("also rolled back %q", also)
		}
	})

	t.Run("no auto_rollback", func(t *testing.T) {
		p := upgradePlan(t, 2, plan.Rollout{})
		f := newFleet()
		f.sick["web1"] = []string{"api"}
		out := Execute(context.Background(), p, f.dial, Options{})
		if got := f.entries("activate api@r-api-old"); len(got) != 0 {
			t.Errorf("switched back without auto_rollback: %v", got)
		}
		if rep := out.Rollouts[0]; !rep.Stopped || rep.Failures[0].Rollback != "" || f.touched("web2") {
			t.Errorf("report %+v", rep)
		}
	})
}

// A change of settings alone (the same artifact, so no upload) is a new
// release like any other: rollback switches back to the one the host ran
// (From), restarting only a service the change touched. A host whose new
// release is the one it ran is left as it is.
func TestSettingsOnlyChangeIsRolledBack(t *testing.T) {
	p := newPlan()
	web1 := svcStep("api", plan.ActionUpdate, protocol.EffectNone, "r-api-old")    // display name: applied in place
	web2 := svcStep("api", plan.ActionUpdate, protocol.EffectRestart, "r-api-old") // arguments: restart
	web3 := svcStep("api", plan.ActionUpdate, protocol.EffectRestart, "r-api-old")
	for _, s := range []*plan.Step{web1, web2, web3} {
		s.OldVersion, s.Version = "2.0", "2.0"
	}
	addHost(p, "web1", nil, web1)
	addHost(p, "web2", nil, web2)
	addHost(p, "web3", nil, web3)
	ro := gatedRollout("api", []string{"web1"}, []string{"web3"}, []string{"web2"})
	ro.AutoRollback, ro.RollbackScope = true, "all"
	p.Rollouts = []*plan.Rollout{ro}
	f := newFleet()
	f.ids["web3/api"] = "r-api-old" // staging yields the release it runs
	f.sick["web2"] = []string{"api@r-api-new"}
	out := Execute(context.Background(), p, f.dial, Options{})
	rep := out.Rollouts[0]
	if !rep.Stopped || len(rep.Failures) != 1 || rep.Failures[0].Host != "web2" {
		t.Fatalf("report %+v", rep)
	}
	if got, want := f.joined("web2"), "lock,stage_release api,"+activateNew+",health api,"+activateOld+",health api,unlock,close"; got != want {
		t.Errorf("web2 operations\n%s\nwant\n%s", got, want)
	}
	if fl := rep.Failures[0]; fl.Rollback != "switched back to 2.0 (release r-api-old) and healthy" || !fl.RolledBackHealthy {
		t.Errorf("failure %+v", fl)
	}
	// web1's change was not gated, and neither is its way back a restart.
	if got, want := f.joined("web1"), "lock,stage_release api,activate api@r-api-new none,activate api@r-api-old none,health api,unlock,close"; got != want {
		t.Errorf("web1 operations\n%s\nwant\n%s", got, want)
	}
	if got := f.joined("web3"); strings.Count(got, "activate") != 1 {
		t.Errorf("web3 operations %s", got)
	}
	want := []string{
		"web1: switched back to 2.0 (release r-api-old) and healthy",
		"web3: left as it is (it ran this release already)",
	}
	if !slices.Equal(rep.AlsoRolledBack, want) {
		t.Errorf("also rolled back %q, want %q", rep.AlsoRolledBack, want)
	}
}

// A new service has no release to go back to: its rollback activates the
// new release again, stopped, and checks nothing.
func TestCreatedServiceRollbackStops(t *testing.T) {
	p := newPlan()
	up := addArtifact(t, p, "MZ-api", "api")
	addHost(p, "web1", []plan.Upload{up}, svcStep("api", plan.ActionCreate, protocol.EffectStart, ""))
	addHost(p, "web2", []plan.Upload{up}, svcStep("api", plan.ActionCreate, protocol.EffectStart, ""))
	ro := gatedRollout("api", []string{"web1"}, []string{"web2"})
	ro.AutoRollback = true
	p.Rollouts = []*plan.Rollout{ro}
	f := newFleet()
	f.sick["web1"] = []string{"api"}
	out := Execute(context.Background(), p, f.dial, Options{})
	if got, want := f.joined("web1"), "lock,upload app.exe,stage_release api,activate api@r-api-new start,health api,activate api@r-api-new stop,unlock,close"; got != want {
		t.Errorf("web1 operations\n%s\nwant\n%s", got, want)
	}
	rep := out.Rollouts[0]
	if len(rep.Failures) != 1 || rep.Failures[0].Rollback != "stopped (a new service has no previous release)" || rep.Failures[0].RolledBackHealthy {
		t.Errorf("report %+v", rep)
	}
	if f.touched("web2") {
		t.Errorf("web2 touched: %s", f.joined("web2"))
	}
}

// canary_pause stops after a healthy canary without failing; -continue
// goes through every batch.
func TestCanaryPauseAndContinue(t *testing.T) {
	ro := plan.Rollout{Canary: true, CanaryPause: true, Batches: [][]string{{"web1"}, {"web2", "web3"}}}
	p := upgradePlan(t, 3, ro)
	f := newFleet()
	var events []string
	rec := &recorder{on: func(e string) {
		if strings.HasPrefix(e, "batch ") || strings.HasPrefix(e, "paused ") {
			events = append(events, e)
		}
	}}
	out := Execute(context.Background(), p, f.dial, Options{Hooks: rec})
	if out.Failed() || !out.Paused || !out.Rollouts[0].Paused || out.Rollouts[0].BatchesDone != 1 || f.touched("web2") || f.touched("web3") || !f.touched("web1") {
		t.Fatalf("pause: failed %v paused %v report %+v", out.Failed(), out.Paused, out.Rollouts[0])
	}
	if got := strings.Join(out.Rollouts[0].Untouched, ","); got != "web2,web3" {
		t.Errorf("untouched %s", got)
	}
	if got := strings.Join(events, ";"); got != "batch service.api 1 [web1];paused service.api [web1]" {
		t.Errorf("events %s", got)
	}

	p = upgradePlan(t, 3, ro)
	f = newFleet()
	events = nil
	out = Execute(context.Background(), p, f.dial, Options{Continue: true, Hooks: rec})
	if out.Failed() || out.Paused || out.Rollouts[0].BatchesDone != 2 || !f.touched("web2") || !f.touched("web3") {
		t.Errorf("continue: %+v", out.Rollouts[0])
	}
	if got := strings.Join(events, ";"); got != "batch service.api 1 [web1];batch service.api 2 [web2 web3]" {
		t.Errorf("events %s", got)
	}
}

// A graceful stop between batches leaves later batches alone and says so.
func TestStopBetweenBatches(t *testing.T) {
	p := upgradePlan(t, 3, plan.Rollout{})
	stop := make(chan struct{})
	rec := &recorder{on: func(e string) {
		if e == "healthy web1 service.api" {
			close(stop)
		}
	}}
	f := newFleet()
	out := Execute(context.Background(), p, f.dial, Options{Stop: stop, Hooks: rec})
	if f.touched("web2") || f.touched("web3") || strings.Join(out.Rollouts[0].Untouched, ",") != "web2,web3" || out.Rollouts[0].BatchesDone != 1 {
		t.Fatalf("went on after the stop:\n%s", strings.Join(f.log, "\n"))
	}
	if out.Results[0].Err != nil || out.Results[1].Err == nil || !strings.Contains(out.Results[1].Err.Error(), "stopped by request") {
		t.Errorf("results %+v", out.Results)
	}
}

// The pause between batches is waited out, and a stop ends it early.
func TestPauseBetweenBatches(t *testing.T) {
	p := upgradePlan(t, 2, plan.Rollout{PauseMS: 50})
	f := newFleet()
	start := time.Now()
	mustSucceed(t, Execute(context.Background(), p, f.dial, Options{}))
	if d := time.Since(start); d < 50*time.Millisecond || !f.touched("web2") {
		t.Errorf("took %s, web2 %s", d, f.joined("web2"))
	}

	p = upgradePlan(t, 2, plan.Rollout{PauseMS: time.Hour.Milliseconds()})
	f = newFleet()
	stop := make(chan struct{})
	rec := &recorder{on: func(e string) {
		if e == "healthy web1 service.api" {
			time.AfterFunc(20*time.Millisecond, func() { close(stop) }) // during the pause
		}
	}}
	out := Execute(context.Background(), p, f.dial, Options{Stop: stop, Hooks: rec})
	if f.touched("web2") || strings.Join(out.Rollouts[0].Untouched, ",") != "web2" {
		t.Errorf("went on after the stop: %+v", out.Rollouts[0])
	}
}
