package eventlog

import (
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

func init() { plan.Register(kind{}, plan.RankBeforeServices) }

// Log is the event log gsd registers services' sources in.
const Log = "Application"

type kind struct{}

func (kind) Name() string { return protocol.KindEventLog }

// native reports whether svc runs in native mode on host: only a native
// service writes to the event log itself.
func native(svc *config.Service, host string) bool {
	return svc.On(host).Mode == config.ModeNative
}

func spec(svc *config.Service) protocol.EventLogSpec {
	return protocol.EventLogSpec{Name: svc.Name, For: "service." + svc.Name, Log: Log}
}

func (kind) Desired(cfg *config.Config, _ func(config.Binary) *build.Artifact) (map[string]plan.Desired, error) {
	out := map[string]plan.Desired{}
	for _, svc := range cfg.Services {
		for _, h := range svc.Hosts {
			if native(svc, h) {
				s := spec(svc)
				out[svc.Name] = plan.Desired{Hosts: svc.Hosts, Blind: s, Spec: s}
				break
			}
		}
	}
	return out, nil
}

func attrs(_ string, s protocol.EventLogSpec) []plan.Attr {
	return []plan.Attr{{Name: "log", Value: s.Log}}
}

func (kind) PlanHost(w *plan.HostWork) {
	wanted := map[string]string{}
	for _, svc := range w.Config.Services {
		if contains(svc.Hosts, w.Host.Host) && native(svc, w.Host.Host) {
			wanted[svc.Name] = svc.Name
		}
	}
	plan.PlanResources(w, protocol.KindEventLog, wanted, attrs)
}

func (kind) Rollouts(p *plan.Plan, _ *config.Config) []*plan.Rollout {
	return plan.KindRollouts(p, protocol.KindEventLog)
}

// Secrets: a source holds none.
func (kind) Secrets(cfg *config.Config, name, host string) (map[string]string, bool) {
	svc := cfg.Service(name)
	if svc == nil || !contains(svc.Hosts, host) || !native(svc, host) {
		return nil, false
	}
	return map[string]string{}, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
