package plan

import "sort"

// Target keeps only the steps for the given services (by name) and
// recounts the summary and uploads. A service that is not targeted is left
// exactly as it is on every host, including one the configuration no
// longer has: -target never deletes what it does not name.
func Target(p *Plan, services []string) {
	keep := map[string]bool{}
	for _, s := range services {
		keep[s] = true
	}
	defer func() {
		var rollouts []*Rollout
		for _, r := range p.Rollouts {
			if keep[r.Service] {
				rollouts = append(rollouts, r)
			}
		}
		p.Rollouts = rollouts
	}()
	p.Summary = Summary{}
	for _, h := range p.Hosts {
		if h.Error != "" {
			p.Summary.FailedHosts++
			continue
		}
		var steps []*Step
		for _, s := range h.Steps {
			if keep[s.Service] {
				steps = append(steps, s)
			}
		}
		h.Steps = steps
		var uploads []Upload
		for _, u := range h.Uploads {
			var forKept []string
			for _, svc := range u.For {
				if keep[svc] {
					forKept = append(forKept, svc)
				}
			}
			if len(forKept) > 0 {
				u.For = forKept
				uploads = append(uploads, u)
			}
		}
		sort.Slice(uploads, func(i, j int) bool { return uploads[i].Name < uploads[j].Name })
		h.Uploads = uploads
		count(&p.Summary, h)
	}
}

func count(s *Summary, h *HostPlan) {
	for _, st := range h.Steps {
		switch st.Action {
		case ActionCreate:
			s.Add++
		case ActionUpdate, ActionReplace:
			s.Change++
		case ActionDelete:
			s.Destroy++
		}
	}
}
