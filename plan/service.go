package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

// serviceKind plans Windows services, the first kind of resource.
type serviceKind struct{}

func (serviceKind) Name() string { return protocol.KindService }

// Desired is one release per service, or one per host for a service
// with per-host values.
func (serviceKind) Desired(cfg *config.Config, artifact func(config.Binary) *build.Artifact) (map[string]Desired, error) {
	out := map[string]Desired{}
	add := func(key string, svc *config.Service, art *build.Artifact) {
		spec := Spec(svc, art)
		out[key] = Desired{Hosts: svc.Hosts, Blind: spec.Blind(), Secrets: spec.Secrets(), Spec: spec}
	}
	for _, svc := range cfg.Services {
		art := artifact(svc.Binary)
		if art == nil {
			return nil, fmt.Errorf("service %q: no artifact for %s", svc.Name, ArtifactKey(svc.Binary))
		}
		if svc.PerHost == nil {
			add(svc.Name, svc, art)
			continue
		}
		for _, h := range svc.Hosts {
			add(specKey(svc, h), svc.On(h), art)
		}
	}
	return out, nil
}

// specKey names the release a service has on a host: the service's name,
// or NAME@HOST when its values differ from host to host.
func specKey(svc *config.Service, host string) string {
	if svc.PerHost == nil {
		return svc.Name
	}
	return svc.Name + "@" + host
}

// PlanHost plans the host's services in dependency order, then removes
// the ones gsd manages there that the configuration no longer has,
// dependents before what they depend on.
func (serviceKind) PlanHost(w *HostWork) {
	actual := map[string]*protocol.ServiceFacts{}
	for i := range w.Facts.Services {
		actual[strings.ToLower(w.Facts.Services[i].Name)] = &w.Facts.Services[i]
	}
	var wanted []*config.Service
	for _, svc := range w.Config.Services {
		if contains(svc.Hosts, w.Host.Host) {
			wanted = append(wanted, svc)
		}
	}
	for _, svc := range dependencyOrder(wanted) {
		spec := w.Desired[specKey(svc, w.Host.Host)].Spec.(protocol.ServiceSpec)
		have := actual[strings.ToLower(svc.Name)]
		step := diffService(svc.On(w.Host.Host), spec, have)
		step.Problems = AccountProblems(w.Host.Host, "service", spec.Account.Name, w.Facts.Accounts)
		delete(actual, strings.ToLower(svc.Name))
		w.Host.Steps = append(w.Host.Steps, step)
		if step.Action != ActionNoOp {
			step.Spec = BlindJSON(spec.Blind())
			step.Secrets = spec.SecretKeys()
			step.Effect = effectOf(step)
			if have != nil && have.Current != nil {
				step.From = have.Current.ID
			}
		}
		if step.Action == ActionCreate || step.Action == ActionReplace {
			w.Upload(svc.Binary, svc.Name)
		}
	}
	var gone []*protocol.ServiceFacts
	for _, sf := range actual {
		gone = append(gone, sf)
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
	for _, sf := range reverseDependencyOrder(gone) {
		step := &Step{Address: "service." + sf.Name, Kind: protocol.KindService, Service: sf.Name, Action: ActionDelete, Effect: protocol.EffectStop}
		if sf.Current != nil {
			step.OldVersion, step.From = sf.Current.Version, sf.Current.ID
		}
		w.Host.Steps = append(w.Host.Steps, step)
	}
}

func (serviceKind) Rollouts(p *Plan, cfg *config.Config) []*Rollout { return serviceRollouts(p, cfg) }

func (serviceKind) Secrets(cfg *config.Config, name, host string) (map[string]string, bool) {
	svc := cfg.Service(name)
	if svc == nil || !contains(svc.Hosts, host) {
		return nil, false
	}
	return SecretsOf(svc, host), true
}
