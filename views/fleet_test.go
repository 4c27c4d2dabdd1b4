package views

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// TestFleetPlanGolden pins the plan of examples/fleet.hcl on three fresh
// production hosts: each host shows its own port, its own config file and
// the for_each workers, one release per host.
func TestFleetPlanGolden(t *testing.T) {
	cfg, diags := config.Load(config.Options{Paths: []string{"../examples/fleet.hcl"}, Environment: "production",
		Environ: []string{"GSD_VAR_winrm_password=example-only"}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	arts := map[string]*build.Artifact{"build.hello": {Build: "hello", Path: "/cache/hello.exe", SHA256: strings.Repeat("b", 64), Size: 8 << 20}}
	facts := map[string]plan.HostFacts{}
	for _, h := range cfg.Hosts {
		facts[h.Name] = plan.HostFacts{Facts: &protocol.Facts{}}
	}
	p, err := plan.Make(cfg, arts, facts)
	if err != nil {
		t.Fatal(err)
	}
	var human bytes.Buffer
	if err := Plan(&human, p, false); err != nil {
		t.Fatal(err)
	}
	out := human.String()
	for _, want := range []string{`"-listen",":8081"`, `"-listen",":8082"`, `"-listen",":8083"`, "+ service.worker-orders", "+ eventlog.web  create", "+ firewall.web  create", "Plan: 13 to add"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %s", want)
		}
	}
	golden(t, "plan-fleet.txt", human.Bytes())
}
