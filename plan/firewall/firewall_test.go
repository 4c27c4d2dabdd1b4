package firewall_test

import (
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	_ "github.com/gsd-deploy/gsd/plan/firewall"
)

const hosts = `
host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = "literal"
  }
}
build "api" {
  package = "./cmd/api"
}
`

func load(t *testing.T, firewall string) *config.Config {
	t.Helper()
	src := hosts + `
service "api" {
  hosts  = ["web1"]
  binary = build.api
` + firewall + `
}
`
	cfg, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

var arts = map[string]*build.Artifact{"build.api": {Build: "api", Path: "/cache/api.exe", SHA256: strings.Repeat("a", 64), Size: 10}}

func stepOf(t *testing.T, p *plan.Plan, address string) *plan.Step {
	t.Helper()
	for _, s := range p.Hosts[0].Steps {
		if s.Address == address {
			return s
		}
	}
	return nil
}

// applied is what web1 reports once the agent put the plan's rule there.
func applied(t *testing.T, p *plan.Plan) protocol.ResourceFacts {
	t.Helper()
	s := stepOf(t, p, "firewall.api")
	return protocol.ResourceFacts{Kind: protocol.KindFirewall, Name: "api", Installed: true, LastApplied: s.Spec,
		Current: &protocol.Release{ID: "r-00000000000000000001"}}
}

func TestFirewallRuleWithItsService(t *testing.T) {
	block := `
  firewall {
    ports            = [8080, "9000-9010"]
    remote_addresses = ["10.0.0.0/8"]
  }`
	cfg := load(t, block)
	p, err := plan.Make(cfg, arts, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	if err != nil {
		t.Fatal(err)
	}
	steps := p.Hosts[0].Steps
	if len(steps) != 2 || steps[0].Address != "firewall.api" || steps[1].Address != "service.api" {
		t.Fatalf("the rule comes before its service: %+v", steps)
	}
	create := steps[0]
	if create.Action != plan.ActionCreate || create.Effect != protocol.EffectNone || len(create.Secrets) != 0 {
		t.Fatalf("create: %+v", create)
	}
	var shown []string
	for _, c := range create.Changes {
		shown = append(shown, c.Attribute+"="+*c.New)
	}
	if got := strings.Join(shown, " "); got != "protocol=tcp ports=8080,9000-9010 profiles=domain,private,public remote_addresses=10.0.0.0/8" {
		t.Errorf("changes: %s", got)
	}
	if r := p.Rollouts[0]; r.Address != "firewall.api" || r.Gated {
		t.Errorf("rollouts: %+v", p.Rollouts)
	}

	// Applied: nothing to do for the rule.
	have := &protocol.Facts{Resources: []protocol.ResourceFacts{applied(t, p)}}
	again, _ := plan.Make(cfg, arts, map[string]plan.HostFacts{"web1": {Facts: have}})
	if s := stepOf(t, again, "firewall.api"); s.Action != plan.ActionNoOp {
		t.Errorf("after apply: %+v", s)
	}

	// Ports change: in place, no restart of anything.
	changed, _ := plan.Make(load(t, strings.Replace(block, `"9000-9010"`, `"9000-9020"`, 1)), arts, map[string]plan.HostFacts{"web1": {Facts: have}})
	s := stepOf(t, changed, "firewall.api")
	if s.Action != plan.ActionUpdate || len(s.Changes) != 1 || *s.Changes[0].Old != "8080,9000-9010" || *s.Changes[0].New != "8080,9000-9020" || s.From == "" {
		t.Errorf("change: %+v %+v", s, s.Changes)
	}

	// Changed by hand on the host: put back.
	drifted := applied(t, p)
	drifted.Drift = []string{"ports"}
	s = stepOf(t, must(plan.Make(cfg, arts, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{Resources: []protocol.ResourceFacts{drifted}}}})), "firewall.api")
	if s.Action != plan.ActionUpdate || *s.Changes[0].Old != "(changed on the host)" || *s.Changes[0].New != "8080,9000-9010" {
		t.Errorf("drift: %+v", s.Changes)
	}

	// No firewall block any more: the rule goes.
	s = stepOf(t, must(plan.Make(load(t, ""), arts, map[string]plan.HostFacts{"web1": {Facts: have}})), "firewall.api")
	if s == nil || s.Action != plan.ActionDelete {
		t.Errorf("removal: %+v", s)
	}
}

func must(p *plan.Plan, err error) *plan.Plan {
	if err != nil {
		panic(err)
	}
	return p
}

func TestFirewallBlockRefused(t *testing.T) {
	for what, block := range map[string]string{
		"port 0":          `firewall { ports = [0] }`,
		"range backwards": `firewall { ports = ["90-80"] }`,
		"protocol":        `firewall { ports = [80], protocol = "icmp" }`,
		"profile":         `firewall { ports = [80], profiles = ["home"] }`,
		"address":         `firewall { ports = [80], remote_addresses = ["10.0.0.300"] }`,
		"no ports":        `firewall { ports = [] }`,
		"two blocks":      "firewall { ports = [80] }\nfirewall { ports = [81] }",
		"any and more":    `firewall { ports = [80], remote_addresses = ["any", "10.0.0.1"] }`,
	} {
		src := hosts + "service \"api\" {\n  hosts = [\"web1\"]\n  binary = build.api\n  " + block + "\n}\n"
		_, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir()})
		if !diags.HasErrors() {
			t.Errorf("%s: accepted", what)
		}
	}
}

// -target service.api keeps the service's rule with it, and nothing of
// another service.
func TestTargetKeepsTheRuleWithItsService(t *testing.T) {
	src := hosts + `
service "api" {
  hosts  = ["web1"]
  binary = build.api
  firewall {
    ports = [8080]
  }
}
service "db" {
  hosts  = ["web1"]
  binary = build.api
  firewall {
    ports = [5432]
  }
}
`
	cfg, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	p := must(plan.Make(cfg, arts, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}}))
	plan.Target(p, []string{"api"})
	var kept []string
	for _, s := range p.Hosts[0].Steps {
		kept = append(kept, s.Address)
	}
	if strings.Join(kept, " ") != "firewall.api service.api" || p.Summary.Add != 2 {
		t.Errorf("kept %v, summary %+v", kept, p.Summary)
	}
	for _, r := range p.Rollouts {
		if r.Service != "api" {
			t.Errorf("rollout of %s kept", r.Address)
		}
	}
}
