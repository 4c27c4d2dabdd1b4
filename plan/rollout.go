package plan

import (
	"reflect"
	"sort"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
)

// HealthCheck is the agent's form of a service's health block; nil (no
// block) is nil, which apply reads as "must be running".
func HealthCheck(h *config.Health) *protocol.HealthCheck {
	if h == nil {
		return nil
	}
	c := &protocol.HealthCheck{HTTP: h.HTTP, TCP: h.TCP, BodyMatch: h.BodyMatch,
		TimeoutMS: h.Timeout.Milliseconds(), IntervalMS: h.Interval.Milliseconds(), HealthyAfterMS: h.HealthyAfter.Milliseconds()}
	return c
}

// Rollout is the order in which one service's hosts are changed. Apply
// goes through the rollouts one service at a time, in the plan's order
// (dependencies first, removals last), and through each rollout batch by
// batch: every host of a batch is changed, then health-gated, before the
// next batch starts.
type Rollout struct {
	// Address is the resource, kind.NAME; Service its name.
	Address string `json:"address"`
	Service string `json:"service"`
	// Batches are host names. When Canary is set, the first batch is the
	// canary: the rest waits until it is healthy.
	Batches     [][]string `json:"batches"`
	Canary      bool       `json:"canary,omitempty"`
	CanaryPause bool       `json:"canary_pause,omitempty"`
	// PauseMS is the wait between batches.
	PauseMS int64 `json:"pause_ms,omitempty"`
	// MaxFailures is how many hosts may fail before the rollout stops.
	MaxFailures  int  `json:"max_failures"`
	AutoRollback bool `json:"auto_rollback"`
	// RollbackScope is "batch" (the failing batch is rolled back) or
	// "all" (every host this rollout changed).
	RollbackScope string `json:"rollback_scope,omitempty"`
	// Gated says hosts are health-checked after a change that touches
	// the running process; a removal is not.
	Gated bool `json:"gated"`
	// Health is the check of the gate; nil means the service must be
	// running. HostHealth holds the check of a host where it differs
	// (a health block that reads each.host).
	Health     *protocol.HealthCheck            `json:"health,omitempty"`
	HostHealth map[string]*protocol.HealthCheck `json:"host_health,omitempty"`
}

// HealthOn is the check of the gate on host.
func (r *Rollout) HealthOn(host string) *protocol.HealthCheck {
	if c, ok := r.HostHealth[host]; ok {
		return c
	}
	return r.Health
}

// Hosts lists every host of the rollout in batch order.
func (r *Rollout) Hosts() []string {
	var out []string
	for _, b := range r.Batches {
		out = append(out, b...)
	}
	return out
}

// serviceRollouts are the rollouts of the services' steps: a service in
// the configuration gets batches from its rollout block; a service being
// removed is removed from all its hosts at once.
func serviceRollouts(p *Plan, cfg *config.Config) []*Rollout {
	var out []*Rollout
	work := map[string][]string{} // service -> hosts with a step that does something
	var removed []string
	seen := map[string]bool{}
	for _, h := range p.Hosts {
		for _, s := range h.Steps {
			if s.Action == ActionNoOp || s.Kind != protocol.KindService {
				continue
			}
			work[s.Service] = append(work[s.Service], h.Host)
			if s.Action == ActionDelete && !seen[s.Service] {
				seen[s.Service] = true
				removed = append(removed, s.Service)
			}
		}
	}
	for _, svc := range dependencyOrder(cfg.Services) {
		hosts := work[svc.Name]
		if len(hosts) == 0 {
			continue
		}
		sort.Strings(hosts)
		out = append(out, RolloutOf(svc, hosts))
	}
	for _, name := range removed {
		out = append(out, AllAtOnce(p, "service."+name))
	}
	return out
}

// AllAtOnce is the rollout of a resource whose change is not health-gated
// (a removal, a scheduled task, a firewall rule): every host of the plan
// with a step on it, in one batch.
func AllAtOnce(p *Plan, address string) *Rollout {
	r := &Rollout{Address: address}
	var hosts []string
	for _, h := range p.Hosts {
		for _, s := range h.Steps {
			if s.Address == address && s.Action != ActionNoOp {
				hosts = append(hosts, h.Host)
				r.Service = s.Service
				break
			}
		}
	}
	sort.Strings(hosts)
	r.Batches = [][]string{hosts}
	return r
}

// RolloutOf cuts hosts (sorted) into the batches svc's rollout block asks
// for. A percentage is of all the service's hosts, so batches keep their
// size when only some hosts need the change, and is at least one host.
func RolloutOf(svc *config.Service, hosts []string) *Rollout {
	ro := svc.Rollout
	r := &Rollout{
		Address:       "service." + svc.Name,
		Service:       svc.Name,
		Health:        HealthCheck(svc.Health),
		PauseMS:       ro.Pause.Milliseconds(),
		MaxFailures:   ro.MaxFailures,
		AutoRollback:  ro.AutoRollback,
		RollbackScope: ro.RollbackScope,
		Gated:         true,
	}
	for _, h := range hosts {
		if c := HealthCheck(svc.On(h).Health); !reflect.DeepEqual(c, r.Health) {
			if r.HostHealth == nil {
				r.HostHealth = map[string]*protocol.HealthCheck{}
			}
			r.HostHealth[h] = c
		}
	}
	size := ro.MaxParallel
	if ro.MaxPercent > 0 {
		size = max(1, len(svc.Hosts)*ro.MaxPercent/100)
	}
	size = max(size, 1)
	rest := hosts
	if ro.Canary > 0 && len(hosts) > 1 {
		n := min(ro.Canary, len(hosts)-1)
		r.Batches = append(r.Batches, hosts[:n])
		r.Canary, r.CanaryPause = true, ro.CanaryPause
		rest = hosts[n:]
	}
	for len(rest) > 0 {
		n := min(size, len(rest))
		r.Batches = append(r.Batches, rest[:n])
		rest = rest[n:]
	}
	return r
}
