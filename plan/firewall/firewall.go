package firewall

import (
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

func init() { plan.Register(kind{}, plan.RankBeforeServices) }

// kind plans the firewall rules of services: created before the service
// starts, changed with it and removed with it.
type kind struct{}

func (kind) Name() string { return protocol.KindFirewall }

// opener is a service or task with a firewall block on some hosts.
type opener struct {
	address string // service.api
	name    string
	hosts   []string
	perHost bool
	on      func(host string) *config.Firewall
}

func openers(cfg *config.Config) []opener {
	var out []opener
	for _, s := range cfg.Services {
		out = append(out, opener{address: "service." + s.Name, name: s.Name, hosts: s.Hosts, perHost: s.PerHost != nil,
			on: func(h string) *config.Firewall { return s.On(h).Firewall }})
	}
	for _, t := range cfg.Tasks {
		out = append(out, opener{address: "task." + t.Name, name: t.Name, hosts: t.Hosts,
			on: func(string) *config.Firewall { return t.Firewall }})
	}
	return out
}

func key(o opener, host string) string {
	if o.perHost {
		return o.name + "@" + host
	}
	return o.name
}

// spec is the rule of what o opens on host; ok is false when it opens
// none.
func spec(o opener, host string) (protocol.FirewallSpec, bool) {
	fw := o.on(host)
	if fw == nil {
		return protocol.FirewallSpec{}, false
	}
	return protocol.FirewallSpec{Name: o.name, For: o.address, Protocol: fw.Protocol, Ports: fw.Ports,
		Profiles: fw.Profiles, RemoteAddresses: fw.RemoteAddresses}, true
}

func (kind) Desired(cfg *config.Config, _ func(config.Binary) *build.Artifact) (map[string]plan.Desired, error) {
	out := map[string]plan.Desired{}
	for _, o := range openers(cfg) {
		for _, h := range o.hosts {
			if rule, ok := spec(o, h); ok {
				out[key(o, h)] = plan.Desired{Hosts: o.hosts, Blind: rule, Spec: rule}
			}
		}
	}
	return out, nil
}

// attrs are a rule's attributes as the plan shows them.
func attrs(_ string, s protocol.FirewallSpec) []plan.Attr {
	return []plan.Attr{
		{Name: "protocol", Value: s.Protocol},
		{Name: "ports", Value: strings.Join(s.Ports, ",")},
		{Name: "profiles", Value: strings.Join(s.Profiles, ",")},
		{Name: "remote_addresses", Value: strings.Join(s.RemoteAddresses, ",")},
	}
}

func (kind) PlanHost(w *plan.HostWork) {
	wanted := map[string]string{}
	for _, o := range openers(w.Config) {
		if _, ok := w.Desired[key(o, w.Host.Host)]; ok && contains(o.hosts, w.Host.Host) {
			wanted[o.name] = key(o, w.Host.Host)
		}
	}
	plan.PlanResources(w, protocol.KindFirewall, wanted, attrs)
}

func (kind) Rollouts(p *plan.Plan, _ *config.Config) []*plan.Rollout {
	return plan.KindRollouts(p, protocol.KindFirewall)
}

// Secrets: a rule holds none.
func (kind) Secrets(cfg *config.Config, name, host string) (map[string]string, bool) {
	for _, o := range openers(cfg) {
		if strings.EqualFold(o.name, name) && contains(o.hosts, host) && o.on(host) != nil {
			return map[string]string{}, true
		}
	}
	return nil, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
