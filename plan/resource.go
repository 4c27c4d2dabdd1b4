package plan

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Attr is one attribute of a resource as a plan shows it: its name in the
// configuration's words ("trigger", "env.MODE") and its value as text.
// An attribute that holds a secret value names its key in Secret: it is
// compared through the salted hash the host reports
// (protocol.ResourceFacts.Secrets), never by value, and its value is
// shown only when it is not Sensitive.
type Attr struct {
	Name      string
	Value     string
	Sensitive bool
	Secret    string
}

// DiffResource is the step that brings a resource from what the host
// reports (have; nil when gsd does not manage it there) to the release
// d. want are d's attributes, had those of the release the host last
// activated (from have.LastApplied), both as the kind lists them. A
// resource that is not there is created; one whose attributes differ,
// or that the host holds differently from how its release put it
// (have.Drift), is updated in place. Such kinds have no process to
// restart: their changes take effect as they are applied.
func DiffResource(kind, name string, d Desired, want, had []Attr, have *protocol.ResourceFacts) *Step {
	step := &Step{Address: kind + "." + name, Kind: kind, Service: name, Version: d.Version, Artifact: d.Artifact}
	switch {
	case have == nil || !have.Installed:
		step.Action = ActionCreate
		for _, a := range want {
			if a.Value == "" {
				continue
			}
			c := Change{Attribute: a.Name, New: ptr(a.Value), Sensitive: a.Sensitive}
			if a.Sensitive {
				c.New = ptr(sensitiveValue)
			}
			step.Changes = append(step.Changes, c)
		}
	default:
		step.Changes = attrChanges(d, want, had, have)
		step.Action = ActionNoOp
		if len(step.Changes) > 0 {
			step.Action = ActionUpdate
		}
	}
	if have != nil && have.Current != nil {
		step.OldVersion = have.Current.Version
	}
	if step.Action != ActionNoOp {
		step.Spec, step.Secrets, step.Effect = BlindJSON(d.Blind), SecretKeys(d.Secrets), protocol.EffectNone
		if have != nil && have.Current != nil {
			step.From = have.Current.ID
		}
	}
	return step
}

func attrChanges(d Desired, want, had []Attr, have *protocol.ResourceFacts) []Change {
	var out []Change
	old := map[string]Attr{}
	for _, a := range had {
		old[a.Name] = a
	}
	changed := map[string]bool{}
	for _, a := range want {
		o, existed := old[a.Name]
		delete(old, a.Name)
		c := Change{Attribute: a.Name, Sensitive: a.Sensitive}
		if a.Secret != "" {
			h, hashed := have.Secrets[a.Secret]
			if hashed && h.Matches(d.Secrets[a.Secret]) {
				continue
			}
			c.New = ptr(a.Value)
			if hashed || existed {
				c.Old = ptr("(changed)")
			}
		} else {
			if existed && o.Value == a.Value {
				continue
			}
			c.New = ptr(a.Value)
			if existed {
				c.Old = ptr(o.Value)
			}
		}
		if a.Sensitive {
			c.New = ptr(sensitiveValue)
			if c.Old != nil {
				c.Old = ptr(sensitiveValue)
			}
		}
		changed[a.Name] = true
		out = append(out, c)
	}
	var gone []string
	for n := range old {
		gone = append(gone, n)
	}
	sort.Strings(gone)
	for _, n := range gone {
		o := old[n]
		v := o.Value
		if o.Sensitive || o.Secret != "" {
			v = "(set)"
		}
		out = append(out, Change{Attribute: n, Old: ptr(v), Sensitive: o.Sensitive})
		changed[n] = true
	}
	// What someone changed on the host goes back to the release's value.
	values := map[string]Attr{}
	for _, a := range want {
		values[a.Name] = a
	}
	for _, n := range have.Drift {
		if changed[n] {
			continue
		}
		c := Change{Attribute: n, Old: ptr("(changed on the host)"), New: ptr("(as released)")}
		if a, ok := values[n]; ok && !a.Sensitive {
			c.New = ptr(a.Value)
		}
		out = append(out, c)
	}
	return out
}

// PlanResources appends to the host's steps those of a kind whose steps
// DiffResource makes: one for each resource wanted on the host (name ->
// the key of its release in w.Desired), in name order, then a removal
// for each resource of the kind gsd manages there that is not wanted.
// attrs lists the attributes of a spec of the kind (S: the type of its
// Desired.Spec, and of what the host reports as last applied). It
// returns the steps it added.
func PlanResources[S any](w *HostWork, kind string, wanted map[string]string, attrs func(name string, spec S) []Attr) []*Step {
	var out []*Step
	keep := map[string]bool{}
	for _, name := range sortedKeys(wanted) {
		keep[strings.ToLower(name)] = true
		d := w.Desired[wanted[name]]
		have := w.Facts.Resource(kind, name)
		var last S
		var had []Attr
		if LastApplied(have, &last) {
			had = attrs(name, last)
		}
		out = append(out, DiffResource(kind, name, d, attrs(name, d.Spec.(S)), had, have))
	}
	for _, have := range w.Managed(kind) {
		if !keep[strings.ToLower(have.Name)] {
			out = append(out, DeleteResource(have))
		}
	}
	w.Host.Steps = append(w.Host.Steps, out...)
	return out
}

// DeleteResource is the step that removes a resource gsd manages on a
// host that the configuration no longer has there.
func DeleteResource(have *protocol.ResourceFacts) *Step {
	step := &Step{Address: have.Kind + "." + have.Name, Kind: have.Kind, Service: have.Name, Action: ActionDelete, Effect: protocol.EffectStop}
	if have.Current != nil {
		step.OldVersion, step.From = have.Current.Version, have.Current.ID
	}
	return step
}

// Managed are the resources of kind gsd manages on the host.
func (w *HostWork) Managed(kind string) []*protocol.ResourceFacts {
	var out []*protocol.ResourceFacts
	for i := range w.Facts.Resources {
		if w.Facts.Resources[i].Kind == kind {
			out = append(out, &w.Facts.Resources[i])
		}
	}
	return out
}

// LastApplied decodes the spec of the release a host last activated into
// spec, and reports whether there was one.
func LastApplied(have *protocol.ResourceFacts, spec any) bool {
	if have == nil || len(have.LastApplied) == 0 {
		return false
	}
	return json.Unmarshal(have.LastApplied, spec) == nil
}

// KindRollouts are the rollouts of a kind whose changes are not
// health-gated: each of its resources changed on some host, all hosts at
// once, in the order the hosts list their steps.
func KindRollouts(p *Plan, kind string) []*Rollout {
	var out []*Rollout
	seen := map[string]bool{}
	for _, h := range p.Hosts {
		for _, s := range h.Steps {
			if s.Kind != kind || s.Action == ActionNoOp || seen[s.Address] {
				continue
			}
			seen[s.Address] = true
			out = append(out, AllAtOnce(p, s.Address))
		}
	}
	return out
}
