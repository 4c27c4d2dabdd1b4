package plan

import (
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
)

// dependencyOrder returns services with each after the gsd services it
// depends on, ties broken by name, so a dependency is installed and
// started first. The configuration has no cycles (config checks).
func dependencyOrder(svcs []*config.Service) []*config.Service {
	byName := map[string]*config.Service{}
	for _, s := range svcs {
		byName[s.Name] = s
	}
	sorted := append([]*config.Service(nil), svcs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	done := map[string]bool{}
	var out []*config.Service
	var visit func(s *config.Service)
	visit = func(s *config.Service) {
		if done[s.Name] {
			return
		}
		done[s.Name] = true
		for _, d := range s.DependsOn {
			if dep := byName[d.Service]; dep != nil {
				visit(dep)
			}
		}
		out = append(out, s)
	}
	for _, s := range sorted {
		visit(s)
	}
	return out
}

// reverseDependencyOrder orders services being removed so that a service
// goes before the ones it depends on: Windows refuses to stop a service
// that running dependents still need.
func reverseDependencyOrder(gone []*protocol.ServiceFacts) []*protocol.ServiceFacts {
	byName := map[string]*protocol.ServiceFacts{}
	for _, s := range gone {
		byName[strings.ToLower(s.Name)] = s
	}
	deps := func(s *protocol.ServiceFacts) []string {
		if s.LastApplied != nil {
			return s.LastApplied.DependsOn
		}
		if s.Config != nil {
			return s.Config.Dependencies
		}
		return nil
	}
	done := map[string]bool{}
	var order []*protocol.ServiceFacts
	var visit func(s *protocol.ServiceFacts)
	visit = func(s *protocol.ServiceFacts) {
		key := strings.ToLower(s.Name)
		if done[key] {
			return
		}
		done[key] = true
		for _, d := range deps(s) {
			if dep := byName[strings.ToLower(d)]; dep != nil {
				visit(dep)
			}
		}
		order = append(order, s)
	}
	for _, s := range gone {
		visit(s)
	}
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}
