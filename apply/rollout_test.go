package apply

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// upgradePlan replaces service "api" (1.0 -> 2.0) on hosts web1..webN in
// the given rollout.
func upgradePlan(n int, ro plan.Rollout) (*plan.Plan, map[string]*config.Host) {
	p := &plan.Plan{}
	hosts := map[string]*config.Host{}
	var names []string
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("web%d", i)
		names = append(names, h)
		hosts[h] = &config.Host{Name: h}
		p.Hosts = append(p.Hosts, &plan.HostPlan{Host: h, Steps: []*plan.Step{{Service: "api", Action: plan.ActionReplace, OldVersion: "1.0", Version: "2.0", Restart: true}}})
	}
	ro.Service, ro.Gated = "api", true
	if ro.Batches == nil {
		for _, h := range names {
			ro.Batches = append(ro.Batches, []string{h})
		}
	}
	p.Rollouts = []*plan.Rollout{&ro}
	return p, hosts
}

// sickDialer is a recorder dialer whose hosts in sick fail api's health.
func sickDialer(log *[]string, sick ...string) Dialer {
	return func(_ context.Context, h *config.Host) (Conn, error) {
		r := &recorder{host: h.Name, log: log, unhealthy: map[string]bool{}}
		for _, s := range sick {
			if s == h.Name {
				r.unhealthy["api"] = true
			}
		}
		return r, nil
	}
}

func upgradeWant() Desired {
	return Desired{Specs: map[string]protocol.ServiceSpec{"api": {Name: "api"}}, Health: map[string]*protocol.HealthCheck{"api": {HTTP: "http://127.0.0.1:8080/healthz"}}}
}

func touched(log []string, host string) bool {
	return strings.Contains(strings.Join(opsOf(log, host), ","), "ensure_service")
}

// The second batch fails its health check: the rollout stops there, that
// host is switched back and checked again, the first host keeps the new
// release, the third is never touched, and the report says which host,
// which check and what the service printed.
func TestHealthFailureStopsRolloutAndRollsBack(t *testing.T) {
	p, hosts := upgradePlan(3, plan.Rollout{AutoRollback: true, RollbackScope: "batch"})
	var log []string
	out := Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log, "web2"), Options{Parallelism: 3})
	if !out.Failed() {
		t.Fatal("the run did not fail")
	}
	rep := out.Rollouts[0]
	if !rep.Stopped || rep.BatchesDone != 2 || strings.Join(rep.Untouched, ",") != "web3" || len(rep.Failures) != 1 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Failures[0]
	if f.Host != "web2" || f.Phase != "health" || !strings.Contains(f.Err, "http check failed") || !strings.Contains(f.Err, "HTTP 503") ||
		f.Health == nil || f.Health.Output[0] != "panic: version 2 is broken" {
		t.Errorf("failure %+v", f)
	}
	// The rollback's own health check runs against the same fake, which
	// still fails: the report must say so rather than claim success.
	if !strings.HasPrefix(f.Rollback, "switched back to 1.0") || f.RolledBackHealthy || !strings.Contains(f.Rollback, "still unhealthy") {
		t.Errorf("rollback %q healthy %v", f.Rollback, f.RolledBackHealthy)
	}
	if got := strings.Join(opsOf(log, "web2"), ","); !strings.Contains(got, "health api,rollback api,health api") {
		t.Errorf("web2 operations %s", got)
	}
	if !touched(log, "web1") || strings.Contains(strings.Join(opsOf(log, "web1"), ","), "rollback") {
		t.Errorf("web1 operations %v", opsOf(log, "web1"))
	}
	if touched(log, "web3") {
		t.Errorf("web3 was touched: %v", opsOf(log, "web3"))
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if ops := opsOf(log, h); ops[len(ops)-2] != "unlock" {
			t.Errorf("%s not unlocked: %v", h, ops)
		}
	}
}

// A failing canary leaves every other host untouched.
func TestFailingCanaryTouchesNoOtherHost(t *testing.T) {
	p, hosts := upgradePlan(3, plan.Rollout{Canary: true, Batches: [][]string{{"web1"}, {"web2", "web3"}}, AutoRollback: true})
	var log []string
	out := Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log, "web1"), Options{Parallelism: 3})
	if !out.Failed() || !out.Rollouts[0].Stopped || strings.Join(out.Rollouts[0].Untouched, ",") != "web2,web3" {
		t.Fatalf("outcome %+v", out.Rollouts)
	}
	for i, h := range []string{"web1", "web2", "web3"} {
		if i > 0 && touched(log, h) {
			t.Errorf("%s touched after the canary failed: %v", h, opsOf(log, h))
		}
		if out.Results[i].Host != h || out.Results[i].Err == nil {
			t.Errorf("%s: no error saying it failed or was left alone: %+v", h, out.Results[i])
		}
	}
}

// Within max_failures the rollout goes on; the failed host is still
// switched back; rollback_scope "all" switches back every changed host
// once the limit is passed.
func TestMaxFailuresAndRollbackScope(t *testing.T) {
	p, hosts := upgradePlan(3, plan.Rollout{MaxFailures: 1, AutoRollback: true})
	var log []string
	out := Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log, "web1"), Options{})
	rep := out.Rollouts[0]
	if rep.Stopped || rep.BatchesDone != 3 || len(rep.Failures) != 1 || !touched(log, "web3") {
		t.Fatalf("one failure within max_failures 1 stopped the rollout: %+v", rep)
	}
	if !strings.Contains(strings.Join(opsOf(log, "web1"), ","), "rollback api") {
		t.Errorf("the failed host was not switched back: %v", opsOf(log, "web1"))
	}

	p, hosts = upgradePlan(3, plan.Rollout{AutoRollback: true, RollbackScope: "all"})
	log = nil
	out = Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log, "web2"), Options{})
	for _, h := range []string{"web1", "web2"} {
		if !strings.Contains(strings.Join(opsOf(log, h), ","), "rollback api") {
			t.Errorf("scope all: %s not switched back: %v", h, opsOf(log, h))
		}
	}
	if touched(log, "web3") || !out.Rollouts[0].Stopped {
		t.Errorf("scope all: %+v, web3 %v", out.Rollouts[0], opsOf(log, "web3"))
	}
	if also := out.Rollouts[0].AlsoRolledBack; len(also) != 1 || !strings.HasPrefix(also[0], "web1: switched back to 1.0 and healthy") {
		t.Errorf("scope all: the healthy host switched back is not reported: %q", also)
	}

	p, hosts = upgradePlan(2, plan.Rollout{})
	log = nil
	Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log, "web1"), Options{})
	if strings.Contains(strings.Join(log, ","), "rollback") {
		t.Errorf("rolled back without auto_rollback: %v", log)
	}
}

// canary_pause stops after a healthy canary without failing; -continue
// goes through every batch.
func TestCanaryPauseAndContinue(t *testing.T) {
	ro := plan.Rollout{Canary: true, CanaryPause: true, Batches: [][]string{{"web1"}, {"web2", "web3"}}}
	p, hosts := upgradePlan(3, ro)
	var log []string
	var events []string
	out := Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log), Options{OnEvent: func(e Event) {
		if e.Kind == EventPaused || e.Kind == EventBatch {
			events = append(events, fmt.Sprintf("%s %v", e.Kind, e.Hosts))
		}
	}})
	if out.Failed() || !out.Paused || !out.Rollouts[0].Paused || touched(log, "web2") || !touched(log, "web1") {
		t.Fatalf("pause: failed %v paused %v report %+v", out.Failed(), out.Paused, out.Rollouts[0])
	}
	if got := strings.Join(events, ";"); got != "batch [web1];paused [web1]" {
		t.Errorf("events %s", got)
	}
	p, hosts = upgradePlan(3, ro)
	log = nil
	out = Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log), Options{Continue: true})
	if out.Failed() || out.Paused || !touched(log, "web3") {
		t.Errorf("continue: %+v", out.Rollouts[0])
	}
}

// A graceful stop between batches leaves later batches alone and says so.
func TestStopBetweenBatches(t *testing.T) {
	p, hosts := upgradePlan(3, plan.Rollout{})
	stop := make(chan struct{})
	var log []string
	out := Execute(context.Background(), p, hosts, upgradeWant(), sickDialer(&log), Options{Stop: stop, OnEvent: func(e Event) {
		if e.Kind == EventHealthy && e.Host == "web1" {
			close(stop)
		}
	}})
	if touched(log, "web2") || strings.Join(out.Rollouts[0].Untouched, ",") != "web2,web3" {
		t.Fatalf("went on after the stop: %v", log)
	}
	if out.Results[1].Err == nil || !strings.Contains(out.Results[1].Err.Error(), "stopped by request") {
		t.Errorf("web2 result %+v", out.Results[1])
	}
}
