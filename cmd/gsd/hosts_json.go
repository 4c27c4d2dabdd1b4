package main

import (
	"fmt"
	"sort"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/views"
)

// hostsCheckJSON prints gsd hosts check -json: per host whether it was
// reached, its agent and facts summary, or its error.
func hostsCheckJSON(env *cliEnv, cfg *config.Config, results map[string]hostResult) error {
	hc := &views.HostsCheck{FormatVersion: views.HostsCheckFormatVersion, Hosts: []views.HostCheck{}}
	for name, r := range results {
		h := cfg.Host(name)
		c := views.HostCheck{Host: name, Address: h.Address, Transport: h.Transport(), OK: r.err == nil}
		if r.err != nil {
			c.Error = r.err.Error()
			hc.Failed++
		} else {
			c.Agent, c.AgentInstalled = r.agent, r.installed
			if r.facts != nil {
				c.Machine, c.ManagedServices = r.facts.Host.Machine, len(r.facts.Services)
				if r.facts.Lock != nil {
					c.LockedBy = r.facts.Lock.Operator
					if c.LockedBy == "" {
						c.LockedBy = r.facts.Lock.User
					}
				}
			}
		}
		hc.Hosts = append(hc.Hosts, c)
	}
	sort.Slice(hc.Hosts, func(i, j int) bool { return hc.Hosts[i].Host < hc.Hosts[j].Host })
	if err := views.HostsCheckJSON(env.stdout, hc); err != nil {
		return err
	}
	if hc.Failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d hosts could not be reached", hc.Failed, len(hc.Hosts))}
	}
	return nil
}
