package config

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// checkServices makes the checks that look at several services at once:
// dependency cycles, dependencies that are missing from a host, and
// display names that would collide in one host's service manager.
func (l *loader) checkServices(cfg *Config) {
	ev := l.ev
	shapes := map[string]*serviceShape{}
	for _, d := range l.services {
		shapes[d.shape.Name] = d.shape
	}
	depRange := func(name string) hcl.Range {
		if s := shapes[name]; s != nil {
			return s.DependsOn.Range()
		}
		return hcl.Range{}
	}

	// A dependency on another gsd service must be installed on every host
	// of the dependent one, or Windows refuses to start it there.
	for _, svc := range cfg.Services {
		for _, dep := range svc.DependsOn {
			other := cfg.Service(dep.Service)
			if other == nil {
				continue
			}
			for _, h := range svc.Hosts {
				if !contains(other.Hosts, h) {
					ev.errorf(depRange(svc.Name), "Dependency missing on host",
						"Service %q depends on service %q, which does not run on host %q.", svc.Name, other.Name, h)
				}
			}
		}
	}

	// Cycles: depth-first search in name order, reporting each cycle once.
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = 1
		stack = append(stack, name)
		svc := cfg.Service(name)
		for _, dep := range svc.DependsOn {
			if dep.Service == "" || cfg.Service(dep.Service) == nil {
				continue
			}
			switch state[dep.Service] {
			case 0:
				visit(dep.Service)
			case 1:
				i := 0
				for stack[i] != dep.Service {
					i++
				}
				cycle := append(append([]string{}, stack[i:]...), dep.Service)
				for j := range cycle {
					cycle[j] = "service." + cycle[j]
				}
				ev.errorf(depRange(dep.Service), "Dependency cycle",
					"These services depend on each other, so Windows could start none of them: %s.", strings.Join(cycle, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = 2
	}
	for _, svc := range cfg.Services {
		if state[svc.Name] == 0 {
			visit(svc.Name)
		}
	}

	// Two services writing one file on the same host would overwrite
	// each other on every apply.
	written := map[string]map[string]string{} // host -> lower path -> service
	for _, svc := range cfg.Services {
		for _, h := range svc.Hosts {
			if written[h] == nil {
				written[h] = map[string]string{}
			}
			for _, f := range svc.On(h).Files {
				key := strings.ToLower(f.Path)
				if prev, dup := written[h][key]; dup && prev != svc.Name {
					ev.errorf(shapes[svc.Name].DefRange, "File written by two services",
						"Services %q and %q both write %s on host %q.", prev, svc.Name, f.Path, h)
					continue
				}
				written[h][key] = svc.Name
			}
		}
	}

	// Windows requires display names to be unique on a machine.
	byHost := map[string]map[string]string{}
	for _, svc := range cfg.Services {
		for _, h := range svc.Hosts {
			if byHost[h] == nil {
				byHost[h] = map[string]string{}
			}
			display := svc.On(h).DisplayName
			key := strings.ToLower(display)
			if prev, dup := byHost[h][key]; dup {
				ev.errorf(shapes[svc.Name].DefRange, "Duplicate display name",
					"Services %q and %q both use the display name %q on host %q; Windows needs display names to be unique on a machine.", prev, svc.Name, display, h)
				break
			}
			byHost[h][key] = svc.Name
		}
	}
}

func contains(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}
