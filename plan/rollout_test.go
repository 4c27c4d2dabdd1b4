package plan

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// sixHosts is six hosts web1..web6 and a build, for rollout tests.
func sixHosts() string {
	var b strings.Builder
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "host %q {\n  address = \"web%d.example.internal\"\n  labels = { role = \"web\" }\n  winrm {\n    user = \"deploy\"\n    password = var.pw\n  }\n}\n", fmt.Sprintf("web%d", i), i)
	}
	return "variable \"pw\" {\n  type = string\n  sensitive = true\n  default = \"x\"\n}\n" + b.String() + "build \"api\" {\n  package = \"./cmd/api\"\n}\n"
}

func rolloutPlan(t *testing.T, rollout string, fresh []string) *Plan {
	t.Helper()
	cfg := loadConfig(t, sixHosts()+`
service "api" {
  hosts  = { role = "web" }
  binary = build.api
  `+rollout+`
}
`)
	facts := map[string]HostFacts{}
	for _, h := range cfg.Hosts {
		facts[h.Name] = HostFacts{Facts: converged(cfg, h.Name)}
	}
	for _, h := range fresh {
		facts[h] = HostFacts{Facts: &protocol.Facts{}}
	}
	return mustMake(t, cfg, facts)
}

func TestRolloutBatches(t *testing.T) {
	all := []string{"web1", "web2", "web3", "web4", "web5", "web6"}
	for _, c := range []struct {
		name    string
		rollout string
		fresh   []string
		want    [][]string
		canary  bool
	}{
		{"default: one host at a time", ``, all,
			[][]string{{"web1"}, {"web2"}, {"web3"}, {"web4"}, {"web5"}, {"web6"}}, false},
		{"two at a time", `rollout { max_parallel = 2 }`, all,
			[][]string{{"web1", "web2"}, {"web3", "web4"}, {"web5", "web6"}}, false},
		{"canary first", `rollout {
    max_parallel = 2
    canary       = 1
  }`, all, [][]string{{"web1"}, {"web2", "web3"}, {"web4", "web5"}, {"web6"}}, true},
		{"percent of all the service's hosts", `rollout { max_parallel = "50%" }`, all,
			[][]string{{"web1", "web2", "web3"}, {"web4", "web5", "web6"}}, false},
		{"only hosts with a change", `rollout { max_parallel = 2 }`, []string{"web2", "web5", "web6"},
			[][]string{{"web2", "web5"}, {"web6"}}, false},
		{"a canary never takes every host", `rollout { canary = 5 }`, []string{"web3", "web4"},
			[][]string{{"web3"}, {"web4"}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rolloutPlan(t, c.rollout, c.fresh)
			if len(p.Rollouts) != 1 {
				t.Fatalf("rollouts: %+v", p.Rollouts)
			}
			r := p.Rollouts[0]
			if !reflect.DeepEqual(r.Batches, c.want) || r.Canary != c.canary || !r.Gated || r.Service != "api" {
				t.Fatalf("got %+v, want batches %v canary %v", r, c.want, c.canary)
			}
		})
	}
}

func TestRolloutPolicyAndNoRolloutWithoutChanges(t *testing.T) {
	p := rolloutPlan(t, `rollout {
    canary         = 1
    canary_pause   = true
    pause          = "2s"
    max_failures   = 1
    rollback_scope = "all"
  }`, []string{"web1", "web2"})
	r := p.Rollouts[0]
	if !r.CanaryPause || r.PauseMS != 2000 || r.MaxFailures != 1 || !r.AutoRollback || r.RollbackScope != "all" {
		t.Fatalf("policy not carried: %+v", r)
	}
	if p := rolloutPlan(t, ``, nil); len(p.Rollouts) != 0 {
		t.Fatalf("a converged service has a rollout: %+v", p.Rollouts)
	}
}

func TestRemovalsRollOutLastAndAtOnce(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	gone := loadConfig(t, base+`
service "old" {
  hosts  = ["web1", "web2"]
  binary = build.api
}
`)
	facts := map[string]HostFacts{}
	for _, h := range []string{"web1", "web2"} {
		f := converged(gone, h)
		facts[h] = HostFacts{Facts: f}
	}
	p := mustMake(t, cfg, facts)
	var order []string
	for _, r := range p.Rollouts {
		order = append(order, r.Service)
	}
	if !reflect.DeepEqual(order, []string{"db", "api", "old"}) {
		t.Fatalf("rollout order %v, want dependencies first and removals last", order)
	}
	last := p.Rollouts[2]
	if !reflect.DeepEqual(last.Batches, [][]string{{"web1", "web2"}}) || last.Gated {
		t.Fatalf("removal rollout %+v", last)
	}
	Target(p, []string{"api"})
	if len(p.Rollouts) != 1 || p.Rollouts[0].Service != "api" {
		t.Fatalf("after -target api: %+v", p.Rollouts)
	}
}
