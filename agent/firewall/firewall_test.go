package firewall

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// fakeRules is a firewall that keeps rules as Windows Firewall does: by
// name, a subnet written back in its address/mask form, and an
// unavailable one that fails every call as Wine's does.
type fakeRules struct {
	rules       map[string]Rule
	unavailable bool
	puts        int
}

func (f *fakeRules) fail() error {
	if f.unavailable {
		return fmt.Errorf("%w: INetFwRules: 0x8002802b", ErrUnavailable)
	}
	return nil
}

func (f *fakeRules) Get(name string) (Rule, bool, error) {
	if err := f.fail(); err != nil {
		return Rule{}, false, err
	}
	r, ok := f.rules[name]
	return r, ok, nil
}

func (f *fakeRules) Put(r Rule) error {
	if err := f.fail(); err != nil {
		return err
	}
	if r.Protocol != "tcp" && r.Protocol != "udp" && r.LocalPorts != "" {
		return errors.New("E_INVALIDARG: ports need TCP or UDP")
	}
	// Windows writes a subnet as address/mask.
	r.RemoteAddresses = strings.ReplaceAll(r.RemoteAddresses, "/8", "/255.0.0.0")
	f.rules[r.Name] = r
	f.puts++
	return nil
}

func (f *fakeRules) Remove(name string) error {
	if err := f.fail(); err != nil {
		return err
	}
	delete(f.rules, name)
	return nil
}

func spec(ports ...string) protocol.FirewallSpec {
	return protocol.FirewallSpec{Name: "api", For: "service.api", Protocol: "tcp", Ports: ports,
		Profiles: []string{"domain", "private"}, RemoteAddresses: []string{"10.0.0.0/8"}}
}

// apply checks and applies a release as the agent does, and returns the
// resource the agent then keeps.
func apply(t *testing.T, h *Handler, s protocol.FirewallSpec, effect string, prev *state.Resource) (*state.Resource, map[string]string, error) {
	t.Helper()
	rec, err := h.Check(s.Name, protocol.MustArgs(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	recorded, gaps, err := h.Apply(s.Name, rec, effect, prev, func(string) {})
	return &state.Resource{Spec: rec.Spec, Recorded: recorded}, gaps, err
}

func TestRuleLifecycle(t *testing.T) {
	fw := &fakeRules{rules: map[string]Rule{}}
	h := &Handler{Rules: fw}
	r, gaps, err := apply(t, h, spec("8080", "9000-9010"), protocol.EffectNone, nil)
	if err != nil || gaps != nil {
		t.Fatal(err, gaps)
	}
	got := fw.rules["api"]
	if got.LocalPorts != "8080,9000-9010" || got.Group != Group || !got.Enabled || !slices.Equal(got.Profiles, []string{"domain", "private"}) {
		t.Fatalf("rule: %+v", got)
	}
	// The host's own spelling of the subnet is no drift.
	f := h.Observe("api", r)
	if !f.Installed || len(f.Drift) != 0 || f.Status.State != "enabled" || !strings.Contains(f.Status.Details[0].Value, "tcp 8080,9000-9010 from 10.0.0.0/255.0.0.0") {
		t.Fatalf("observe: %+v %+v", f, f.Status)
	}

	// Changed by hand: named; removed by hand: not installed.
	changed := fw.rules["api"]
	changed.LocalPorts, changed.Enabled = "80", false
	fw.rules["api"] = changed
	if f := h.Observe("api", r); !slices.Equal(f.Drift, []string{"ports", "enabled"}) {
		t.Errorf("drift: %v", f.Drift)
	}
	delete(fw.rules, "api")
	if f := h.Observe("api", r); f.Installed {
		t.Error("a rule removed by hand is reported installed")
	}

	// A change of release puts the new rule; the rollback of a new rule
	// leaves it disabled.
	if _, _, err := apply(t, h, spec("8443"), protocol.EffectNone, r); err != nil || fw.rules["api"].LocalPorts != "8443" {
		t.Fatal(err, fw.rules)
	}
	if _, _, err := apply(t, h, spec("8443"), protocol.EffectStop, r); err != nil || fw.rules["api"].Enabled {
		t.Fatal(err, fw.rules)
	}
	if err := h.Remove("api", r, func(string) {}); err != nil || len(fw.rules) != 0 {
		t.Fatal(err, fw.rules)
	}
}

// A rule of that name that gsd did not make is left alone.
func TestRuleOfSomeoneElse(t *testing.T) {
	fw := &fakeRules{rules: map[string]Rule{"api": {Name: "api", Group: "Core Networking", Protocol: "tcp", LocalPorts: "80"}}}
	_, _, err := apply(t, &Handler{Rules: fw}, spec("8080"), protocol.EffectNone, nil)
	if err == nil || !strings.Contains(err.Error(), "was not made by gsd") || fw.puts != 0 {
		t.Fatalf("got %v, puts %d", err, fw.puts)
	}
}

// On a host whose firewall cannot be managed (Wine), the rule is kept in
// the agent's state and the facts say so.
func TestRuleOnHostWithoutFirewall(t *testing.T) {
	h := &Handler{Rules: &fakeRules{unavailable: true}}
	r, gaps, err := apply(t, h, spec("8080"), protocol.EffectNone, nil)
	if err != nil || !strings.Contains(gaps["rule"], "cannot be managed") {
		t.Fatal(err, gaps)
	}
	f := h.Observe("api", r)
	if !f.Installed || f.Sources["rule"] != protocol.SourceAgentState || f.Unreadable["rule"] == "" || f.Status.State != "enabled" {
		t.Fatalf("observe: %+v", f)
	}
	if err := h.Remove("api", r, func(string) {}); err != nil {
		t.Fatal(err)
	}
}

func TestRuleCheckRefuses(t *testing.T) {
	h := &Handler{Rules: &fakeRules{rules: map[string]Rule{}}}
	for what, s := range map[string]protocol.FirewallSpec{
		"other name": func() protocol.FirewallSpec { s := spec("80"); s.Name = "db"; return s }(),
		"protocol":   func() protocol.FirewallSpec { s := spec("80"); s.Protocol = "icmp"; return s }(),
		"port 0":     spec("0"),
		"range back": spec("90-80"),
		"no ports":   spec(),
		"profile":    func() protocol.FirewallSpec { s := spec("80"); s.Profiles = []string{"home"}; return s }(),
		"address":    func() protocol.FirewallSpec { s := spec("80"); s.RemoteAddresses = []string{"a,b"}; return s }(),
	} {
		if _, err := h.Check("api", protocol.MustArgs(s), nil); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	valid := `{"name":"api","for":"service.api","protocol":"tcp","ports":["80"],"profiles":["domain"],"remote_addresses":["*"]`
	if _, err := h.Check("api", json.RawMessage(valid+`}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Check("api", json.RawMessage(valid+`,"extra":1}`), nil); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := h.Check("api", protocol.MustArgs(spec("80")), map[string]string{"x": "y"}); err == nil {
		t.Error("secrets accepted")
	}
}
