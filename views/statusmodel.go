package views

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// HostReading is what gsd status read from one host: its facts, its
// agent's version and each service's health (by lower-case name).
type HostReading struct {
	Facts  *protocol.Facts
	Agent  string
	Health map[string]*HealthStatus
}

// NewStatus joins facts, health and the plan's steps into what status
// shows: per host, every service the configuration places there and
// every one gsd manages there, sorted by name.
func NewStatus(cfg *config.Config, p *plan.Plan, readings map[string]HostReading, targets []string, now time.Time) *Status {
	st := &Status{FormatVersion: StatusFormatVersion, CheckedAt: now.UTC(), Hosts: []*HostStatus{}}
	for _, hp := range p.Hosts {
		r := readings[hp.Host]
		hs := &HostStatus{Host: hp.Host, Address: hp.Address, Transport: hp.Transport, AgentVersion: r.Agent, Error: hp.Error, Services: []*ServiceStatus{}}
		st.Hosts = append(st.Hosts, hs)
		if hp.Error != "" {
			st.Summary.FailedHosts++
			continue
		}
		actual := map[string]*protocol.ServiceFacts{}
		for i := range r.Facts.Services {
			actual[strings.ToLower(r.Facts.Services[i].Name)] = &r.Facts.Services[i]
		}
		for _, step := range hp.Steps {
			if targets != nil && !ContainsFold(targets, step.Service) {
				continue
			}
			var s *ServiceStatus
			if step.Kind != protocol.KindService {
				s = resourceStatus(step, r.Facts.Resource(step.Kind, step.Service))
				hs.Resources = append(hs.Resources, s)
				st.Summary.Resources++
			} else {
				svc := cfg.Service(step.Service)
				inConfig := svc != nil && slices.Contains(svc.Hosts, hp.Host)
				s = serviceStatus(step, svc, inConfig, actual[strings.ToLower(step.Service)], r.Health[strings.ToLower(step.Service)])
				hs.Services = append(hs.Services, s)
				st.Summary.Services++
				if s.State == "running" {
					st.Summary.Running++
				}
			}
			if s.Health != nil && s.Health.Status == Unhealthy {
				st.Summary.Unhealthy++
			}
			if s.Drift != nil {
				st.Summary.Drifted++
			}
		}
		sort.Slice(hs.Services, func(i, j int) bool {
			return strings.ToLower(hs.Services[i].Service) < strings.ToLower(hs.Services[j].Service)
		})
		sort.Slice(hs.Resources, func(i, j int) bool {
			return strings.ToLower(hs.Resources[i].Address) < strings.ToLower(hs.Resources[j].Address)
		})
	}
	return st
}

func serviceStatus(step *plan.Step, svc *config.Service, inConfig bool, sf *protocol.ServiceFacts, health *HealthStatus) *ServiceStatus {
	s := &ServiceStatus{Address: step.Address, Service: step.Service, InConfiguration: inConfig, Health: health}
	if svc != nil {
		s.Mode = svc.Mode
	}
	if sf != nil {
		if sf.Mode != "" {
			s.Mode = sf.Mode
		}
		s.Deployed = sf.Installed
		if sf.Installed && sf.Status != nil {
			s.State, s.PID, s.ExitCode = sf.Status.State, sf.Status.PID, sf.Status.ExitCode
		}
		s.Release, s.Previous = releaseOf(sf.Current), releaseOf(sf.Previous)
		if sf.Current != nil {
			s.Since = sf.Current.Activated
		}
		if w := sf.Wrapper; w != nil && s.Mode == protocol.ModeWrapped {
			// Starts counts the wrapper's starts of its program since the
			// service itself started; all but the first are restarts.
			restarts := max(w.Starts-1, 0)
			s.Restarts = &restarts
			s.Wrapper = &WrapperStatus{Starts: w.Starts, ChildPID: w.ChildPID, LastExitCode: w.LastExitCode, LastExit: w.LastExit, LastStop: w.LastStop}
			if w.ChildPID != 0 {
				// The wrapper records its status when it starts the
				// program and not again until the program exits.
				s.Wrapper.ChildSince = w.Updated
			}
		}
	}
	s.Drift = driftOf(step)
	return s
}

// driftOf is how a step says the resource differs from the
// configuration, or nil when it does not.
func driftOf(step *plan.Step) *Drift {
	if step.Action == plan.ActionNoOp {
		return nil
	}
	d := &Drift{Action: string(step.Action)}
	for _, c := range step.Changes {
		// Names only: a value may be a secret.
		if !slices.Contains(d.Attributes, c.Attribute) {
			d.Attributes = append(d.Attributes, c.Attribute)
		}
	}
	return d
}

// resourceStatus is a row for a resource of a kind other than services
// (a scheduled task, a firewall rule): the kind's own state and details
// as the host reported them.
func resourceStatus(step *plan.Step, rf *protocol.ResourceFacts) *ServiceStatus {
	s := &ServiceStatus{Address: step.Address, Service: step.Service, Kind: step.Kind, InConfiguration: step.Action != plan.ActionDelete}
	if rf != nil {
		s.Deployed = rf.Installed
		s.Release, s.Previous = releaseOf(rf.Current), releaseOf(rf.Previous)
		if rf.Current != nil {
			s.Since = rf.Current.Activated
		}
		if rf.Installed && rf.Status != nil {
			s.State = rf.Status.State
			for _, d := range rf.Status.Details {
				s.Details = append(s.Details, Detail(d))
			}
		}
	}
	s.Drift = driftOf(step)
	return s
}

func releaseOf(r *protocol.Release) *Release {
	if r == nil {
		return nil
	}
	return &Release{ID: r.ID, Version: r.Version, Artifact: r.Artifact, Activated: r.Activated}
}

// ContainsFold reports whether list holds s, compared as Windows compares
// service names: without regard to case.
func ContainsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}
