package eventlog

import (
	"sort"
	"strings"

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

func spec(svc *config.Service) *protocol.EventLogSpec {
	return &protocol.EventLogSpec{Name: svc.Name, For: "service." + svc.Name, Log: Log}
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

func attrs(s *protocol.EventLogSpec) []plan.Attr {
	return []plan.Attr{{Name: "log", Value: s.Log}}
}

func (kind) PlanHost(w *plan.HostWork) {
	wanted := map[string]bool{}
	var svcs []*config.Service
	for _, svc := range w.Config.Services {
		if contains(svc.Hosts, w.Host.Host) && native(svc, w.Host.Host) {
			svcs = append(svcs, svc)
			wanted[strings.ToLower(svc.Name)] = true
		}
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	for _, svc := range svcs {
		d := w.Desired[svc.Name]
		have := w.Facts.Resource(protocol.KindEventLog, svc.Name)
		var last protocol.EventLogSpec
		var had []plan.Attr
		if plan.LastApplied(have, &last) {
			had = attrs(&last)
		}
		w.Host.Steps = append(w.Host.Steps, plan.DiffResource(protocol.KindEventLog, svc.Name, d, attrs(d.Spec.(*protocol.EventLogSpec)), had, have))
	}
	for _, have := range w.Managed(protocol.KindEventLog) {
		if !wanted[strings.ToLower(have.Name)] {
			w.Host.Steps = append(w.Host.Steps, plan.DeleteResource(have))
		}
	}
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
