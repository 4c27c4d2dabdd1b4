package main

import (
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// gsd restart, stop, start and rollback keep a service's canary but not
// its pause: they have no -continue, so a pause would stop them at the
// canary on every run.
func TestServiceOperationsDoNotPauseAtTheCanary(t *testing.T) {
	svc := &config.Service{Name: "api", Hosts: []string{"a", "b", "c"},
		Rollout: config.Rollout{Canary: 1, CanaryPause: true, MaxParallel: 1, Pause: time.Second}}
	hosts := []*config.Host{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	results := map[string]hostResult{}
	for _, h := range hosts {
		results[h.Name] = hostResult{facts: &protocol.Facts{Services: []protocol.ServiceFacts{{Name: "api"}}}}
	}
	p, missing := servicePlan(svc, hosts, results, func(hp *plan.HostPlan, sf *protocol.ServiceFacts) (*plan.Step, string) {
		return &plan.Step{Address: "service.api", Action: plan.ActionUpdate}, ""
	})
	if len(missing) != 0 || len(p.Rollouts) != 1 {
		t.Fatalf("plan %+v, missing %v", p, missing)
	}
	if ro := p.Rollouts[0]; !ro.Canary || ro.CanaryPause || len(ro.Batches) != 3 || len(ro.Batches[0]) != 1 {
		t.Errorf("rollout: canary %v, pause %v, batches %v", ro.Canary, ro.CanaryPause, ro.Batches)
	}
}
