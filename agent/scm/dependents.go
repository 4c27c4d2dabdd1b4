package scm

import (
	"sort"
	"strings"
)

// stopOrder lists the services that depend on name, directly or through
// others, each before the services it depends on, which is the order they
// must be stopped in. dependsOn maps every service to the services it
// depends on; names compare case-insensitively, as Windows compares them.
// It stands in for EnumDependentServices where the host lacks it (Wine).
func stopOrder(name string, dependsOn map[string][]string) []string {
	dependents := map[string][]string{}
	for svc, deps := range dependsOn {
		for _, d := range deps {
			key := strings.ToLower(d)
			dependents[key] = append(dependents[key], svc)
		}
	}
	for _, l := range dependents {
		sort.Strings(l)
	}
	seen := map[string]bool{strings.ToLower(name): true}
	var order []string
	// Depth first along "is depended on by": a service is listed after
	// everything that depends on it, so before what it depends on.
	var visit func(svc string)
	visit = func(svc string) {
		key := strings.ToLower(svc)
		if seen[key] {
			return
		}
		seen[key] = true
		for _, d := range dependents[key] {
			visit(d)
		}
		order = append(order, svc)
	}
	for _, d := range dependents[strings.ToLower(name)] {
		visit(d)
	}
	return order
}
