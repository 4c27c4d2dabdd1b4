package firewall

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/state"
)

// Group is the rule group gsd's rules carry: a rule of that name outside
// it was made by someone else, and gsd leaves it alone.
const Group = "gsd"

// Rule is one inbound allow rule as the host's firewall holds it.
type Rule struct {
	Name            string   `json:"name"`
	Description     string   `json:"description,omitempty"`
	Group           string   `json:"group,omitempty"`
	Protocol        string   `json:"protocol"`         // "tcp" or "udp"
	LocalPorts      string   `json:"local_ports"`      // "8080,9000-9010"
	RemoteAddresses string   `json:"remote_addresses"` // "*" or a comma-separated list
	Profiles        []string `json:"profiles"`         // sorted: domain, private, public
	Enabled         bool     `json:"enabled"`
}

// Rules is the host's firewall: its inbound rules by name.
type Rules interface {
	// Get returns the inbound rule of that name; ok is false when there
	// is none.
	Get(name string) (r Rule, ok bool, err error)
	// Put creates the rule, or changes the one of that name to it.
	Put(r Rule) error
	// Remove deletes the rule of that name, if there is one.
	Remove(name string) error
}

// ErrUnavailable is wrapped by a Rules whose host has no firewall gsd
// can manage (Wine's is a stub). The agent then keeps the rule in its
// state and says the host cannot hold it, as for other Wine gaps.
var ErrUnavailable = errors.New("this host's firewall cannot be managed")

func init() {
	agent.RegisterKind(protocol.KindFirewall, func(agent.Host) agent.Handler { return &Handler{Rules: hostRules()} })
}

// Handler applies firewall rules.
type Handler struct{ Rules Rules }

// recorded is what the agent keeps of a rule: the rule as the host read
// it back after it was put, or, on a host that cannot hold rules, the
// rule that would have been put and why not.
type recorded struct {
	Rule        Rule   `json:"rule"`
	Unavailable string `json:"unavailable,omitempty"`
}

var profileNames = []string{"domain", "private", "public"}

// Check validates a rule before it is stored.
func (h *Handler) Check(name string, raw json.RawMessage, secrets map[string]string) (releases.Record, error) {
	var spec protocol.FirewallSpec
	if err := protocol.DecodeArgs(protocol.Request{Op: protocol.OpStageRelease, Args: raw}, &spec); err != nil {
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "firewall %s: %v", name, err)
	}
	bad := func(format string, args ...any) error {
		return agent.Errorf(protocol.CodeBadRequest, "firewall %s: "+format, append([]any{name}, args...)...)
	}
	switch {
	case spec.Name != name:
		return releases.Record{}, bad("the spec names rule %q", spec.Name)
	case len(secrets) > 0:
		return releases.Record{}, bad("a firewall rule has no secrets")
	case spec.Protocol != "tcp" && spec.Protocol != "udp":
		return releases.Record{}, bad("protocol %q must be tcp or udp", spec.Protocol)
	case len(spec.Ports) == 0 || len(spec.Profiles) == 0 || len(spec.RemoteAddresses) == 0:
		return releases.Record{}, bad("ports, profiles and remote addresses must not be empty")
	}
	for _, p := range spec.Ports {
		if !validPorts(p) {
			return releases.Record{}, bad("%q is not a port or a range of ports", p)
		}
	}
	for _, p := range spec.Profiles {
		if !slices.Contains(profileNames, p) {
			return releases.Record{}, bad("profile %q must be domain, private or public", p)
		}
	}
	for _, a := range spec.RemoteAddresses {
		if a == "" || strings.ContainsAny(a, ", \x00") {
			return releases.Record{}, bad("remote address %q is not one", a)
		}
	}
	b, err := json.Marshal(spec)
	return releases.Record{Spec: b}, err
}

func validPorts(p string) bool {
	lo, hi, isRange := strings.Cut(p, "-")
	a, errA := strconv.Atoi(lo)
	b := a
	var errB error
	if isRange {
		b, errB = strconv.Atoi(hi)
	}
	return errA == nil && errB == nil && a >= 1 && b <= 65535 && a <= b
}

// ruleOf is the rule a release asks for.
func ruleOf(spec protocol.FirewallSpec, enabled bool) Rule {
	profiles := slices.Clone(spec.Profiles)
	slices.Sort(profiles)
	return Rule{Name: spec.Name, Description: "Inbound for " + spec.For + ", managed by gsd", Group: Group, Protocol: spec.Protocol,
		LocalPorts: strings.Join(spec.Ports, ","), RemoteAddresses: strings.Join(spec.RemoteAddresses, ","), Profiles: profiles, Enabled: enabled}
}

// Apply puts the release's rule in place; the rollback of a new rule
// (EffectStop) leaves it disabled.
func (h *Handler) Apply(name string, rec releases.Record, effect string, prev *state.Resource, emit func(string)) (json.RawMessage, map[string]string, error) {
	var spec protocol.FirewallSpec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return nil, nil, err
	}
	rule := ruleOf(spec, effect != protocol.EffectStop)
	unavailable := func(err error) (json.RawMessage, map[string]string, error) {
		b, _ := json.Marshal(recorded{Rule: rule, Unavailable: err.Error()})
		return b, map[string]string{"rule": err.Error()}, nil
	}
	existing, ok, err := h.Rules.Get(name)
	switch {
	case errors.Is(err, ErrUnavailable):
		return unavailable(err)
	case err != nil:
		return nil, nil, err
	case ok && prev == nil && existing.Group != Group:
		return nil, nil, agent.Errorf(protocol.CodeUnmanaged, "firewall rule %q exists on this host and was not made by gsd (its group is %q); gsd leaves it alone: rename or remove it", name, existing.Group)
	}
	if err := h.Rules.Put(rule); errors.Is(err, ErrUnavailable) {
		return unavailable(err)
	} else if err != nil {
		return nil, nil, fmt.Errorf("putting the rule: %w", err)
	}
	// What the host reads back is what later reads are compared with:
	// the firewall writes some values in its own form.
	got, ok, err := h.Rules.Get(name)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("reading the rule back: %w", err)
	case !ok:
		return nil, nil, errors.New("the rule is not there after it was put")
	}
	b, err := json.Marshal(recorded{Rule: got})
	return b, nil, err
}

// Remove deletes the rule.
func (h *Handler) Remove(name string, r *state.Resource, emit func(string)) error {
	err := h.Rules.Remove(name)
	if errors.Is(err, ErrUnavailable) {
		emit(fmt.Sprintf("firewall %s: %v; gsd forgets the rule it kept", name, err))
		return nil
	}
	return err
}

// Observe reads the rule and names what differs from how gsd put it.
func (h *Handler) Observe(name string, r *state.Resource) protocol.ResourceFacts {
	var rec recorded
	json.Unmarshal(r.Recorded, &rec)
	f := protocol.ResourceFacts{Installed: true}
	if rec.Unavailable != "" {
		f.Sources = map[string]string{"rule": protocol.SourceAgentState}
		f.Unreadable = map[string]string{"rule": rec.Unavailable}
		f.Status = status(rec.Rule)
		return f
	}
	got, ok, err := h.Rules.Get(name)
	switch {
	case err != nil:
		// Unknown: better no change planned than a rule created twice.
		f.Unreadable = map[string]string{"rule": err.Error()}
		return f
	case !ok:
		f.Installed = false
		return f
	}
	f.Drift = drift(rec.Rule, got)
	f.Status = status(got)
	return f
}

// drift names, in the configuration's words, what differs between the
// rule gsd put and the one the host has now.
func drift(want, got Rule) []string {
	var out []string
	add := func(attr string, differs bool) {
		if differs {
			out = append(out, attr)
		}
	}
	add("protocol", want.Protocol != got.Protocol)
	add("ports", want.LocalPorts != got.LocalPorts)
	add("profiles", !slices.Equal(want.Profiles, got.Profiles))
	add("remote_addresses", want.RemoteAddresses != got.RemoteAddresses)
	add("enabled", want.Enabled != got.Enabled)
	return out
}

func status(r Rule) *protocol.ResourceStatus {
	state := "enabled"
	if !r.Enabled {
		state = "disabled"
	}
	from := r.RemoteAddresses
	if from == "*" {
		from = "any address"
	}
	return &protocol.ResourceStatus{State: state, Details: []protocol.StatusDetail{
		{Name: "allows", Value: fmt.Sprintf("%s %s from %s (%s)", r.Protocol, r.LocalPorts, from, strings.Join(r.Profiles, ", "))},
	}}
}
