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

// TestTasksPlanGolden pins the plan of examples/tasks.hcl on a fresh
// host: two tasks created, their program uploaded once.
func TestTasksPlanGolden(t *testing.T) {
	cfg, diags := config.Load(config.Options{Paths: []string{"../examples/tasks.hcl"}, Environ: []string{"GSD_VAR_winrm_password=example-only"}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	arts := map[string]*build.Artifact{"build.report": {Build: "report", Path: "/cache/report.exe", SHA256: strings.Repeat("c", 64), Size: 2 << 20}}
	p, err := plan.Make(cfg, arts, map[string]plan.HostFacts{"jobs1": {Facts: &protocol.Facts{}}})
	if err != nil {
		t.Fatal(err)
	}
	var human bytes.Buffer
	if err := Plan(&human, p, false); err != nil {
		t.Fatal(err)
	}
	out := human.String()
	for _, want := range []string{"+ task.nightly-report  create, release 1.0.0", "+ task.sync  create, release cccccccccccc", `"every 15m; at startup"`, "Plan: 2 to add"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %s", want)
		}
	}
	golden(t, "plan-tasks.txt", human.Bytes())
}
