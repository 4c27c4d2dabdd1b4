package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
)

// fleet is one service on three hosts with a per-host port (from the
// hosts' vars) in its arguments, file and health check, and a per-host
// secret in its environment.
func fleet(web2Port int) string {
	var b strings.Builder
	b.WriteString(`
variable "pw" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
build "api" {
  package = "./cmd/api"
}
service "api" {
  hosts  = { role = "web" }
  binary = build.api
  args   = ["-listen", ":${each.host.vars.port}"]
  env    = { TOKEN = "${var.pw}-${each.host.name}" }
  file "site.yaml" {
    content = "host: ${each.host.name}\nport: ${each.host.vars.port}\n"
  }
  health {
    http = "http://localhost:${each.host.vars.port}/healthz"
  }
}
`)
	for i, port := range []int{8081, web2Port, 8083} {
		fmt.Fprintf(&b, `
host "web%d" {
  address = "web%d.example.internal"
  labels  = { role = "web" }
  vars    = { port = %d }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
`, i+1, i+1, port)
	}
	return b.String()
}

func fleetFacts(cfg *config.Config) map[string]HostFacts {
	facts := map[string]HostFacts{}
	for _, h := range cfg.Hosts {
		facts[h.Name] = HostFacts{Facts: converged(cfg, h.Name)}
	}
	return facts
}

// TestPerHostReleases: each host gets its own release, and a converged
// fleet has nothing to do.
func TestPerHostReleases(t *testing.T) {
	cfg := loadConfig(t, fleet(8082))
	fresh := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}, "web2": {Facts: &protocol.Facts{}}, "web3": {Facts: &protocol.Facts{}}})
	specs := map[string]string{}
	for i, h := range []string{"web1", "web2", "web3"} {
		s := step(t, fresh, h, "api")
		specs[string(s.Spec)] = h
		if !strings.Contains(string(s.Spec), fmt.Sprintf(`":808%d"`, i+1)) {
			t.Errorf("%s: release %s", h, s.Spec)
		}
		if strings.Contains(string(s.Spec), "s3cret") {
			t.Errorf("%s: the plan holds the secret", h)
		}
	}
	if len(specs) != 3 {
		t.Errorf("want three different releases, have %d", len(specs))
	}
	p := mustMake(t, cfg, fleetFacts(cfg))
	if p.Summary.HasChanges() {
		t.Errorf("converged fleet: %+v", p.Summary)
	}
}

// TestChangingOneHostsVarChangesThatHostOnly: a new port on web2 is a
// change and a restart on web2, with web2's own health check, and
// nothing on the other hosts.
func TestChangingOneHostsVarChangesThatHostOnly(t *testing.T) {
	before := loadConfig(t, fleet(8082))
	after := loadConfig(t, fleet(9092))
	p := mustMake(t, after, fleetFacts(before))
	if p.Summary.Change != 1 || p.Summary.Add+p.Summary.Destroy != 0 {
		t.Fatalf("summary %+v", p.Summary)
	}
	for _, h := range []string{"web1", "web3"} {
		if s := step(t, p, h, "api"); s.Action != ActionNoOp {
			t.Errorf("%s: %s %v", h, s.Action, changed(s))
		}
	}
	s := step(t, p, "web2", "api")
	if s.Action != ActionUpdate || !s.Restart || !slices.Equal(changed(s), []string{"args", "file.site.yaml"}) {
		t.Errorf("web2: %s restart=%v %v", s.Action, s.Restart, changed(s))
	}
	if len(p.Rollouts) != 1 || !slices.Equal(p.Rollouts[0].Hosts(), []string{"web2"}) {
		t.Fatalf("rollouts %+v", p.Rollouts)
	}
	if got := p.Rollouts[0].HealthOn("web2").HTTP; got != "http://localhost:9092/healthz" {
		t.Errorf("web2 is gated by %s", got)
	}
	// The saved plan's fingerprint sees the change too.
	if mustMake(t, before, fleetFacts(before)).Fingerprints.Config == p.Fingerprints.Config {
		t.Error("the config fingerprint misses a host's var")
	}
}

// TestPerHostSecrets: apply resolves each host's own secrets, and they
// match the plan's fingerprint.
func TestPerHostSecrets(t *testing.T) {
	cfg := loadConfig(t, fleet(8082))
	api := cfg.Service("api")
	key := protocol.SecretEnv("TOKEN")
	if a, b := SecretsOf(api, "web1"), SecretsOf(api, "web2"); a[key] != "s3cret-web1" || b[key] != "s3cret-web2" {
		t.Errorf("secrets web1 %v web2 %v", a, b)
	}
	p := mustMake(t, cfg, fleetFacts(cfg))
	configFP, secretsFP, err := ConfigFingerprints(cfg, p.Fingerprints.Artifacts)
	if err != nil || configFP != p.Fingerprints.Config || secretsFP != p.Fingerprints.Secrets {
		t.Errorf("fingerprints at apply time differ from the plan's: %v", err)
	}
}
