package eventlog_test

import (
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	_ "github.com/gsd-deploy/gsd/plan/eventlog"
)

func load(t *testing.T, mode string) *config.Config {
	t.Helper()
	src := `
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
service "api" {
  hosts  = ["web1"]
  binary = build.api
  mode   = "` + mode + `"
}
`
	cfg, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

var arts = map[string]*build.Artifact{"build.api": {Build: "api", SHA256: strings.Repeat("a", 64)}}

func source(t *testing.T, cfg *config.Config, f *protocol.Facts) *plan.Step {
	t.Helper()
	p, err := plan.Make(cfg, arts, map[string]plan.HostFacts{"web1": {Facts: f}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Hosts[0].Steps {
		if s.Kind == protocol.KindEventLog {
			return s
		}
	}
	return nil
}

// A native service's event source is registered before it starts, and
// goes when the service goes or stops writing to the event log itself.
func TestEventSourceOfNativeServices(t *testing.T) {
	native := load(t, "native")
	p, _ := plan.Make(native, arts, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	steps := p.Hosts[0].Steps
	if len(steps) != 2 || steps[0].Address != "eventlog.api" || steps[0].Action != plan.ActionCreate || steps[1].Address != "service.api" {
		t.Fatalf("steps: %+v", steps)
	}
	if string(steps[0].Spec) != `{"name":"api","for":"service.api","log":"Application"}` {
		t.Errorf("spec: %s", steps[0].Spec)
	}
	have := &protocol.Facts{Resources: []protocol.ResourceFacts{{Kind: protocol.KindEventLog, Name: "api", Installed: true,
		LastApplied: steps[0].Spec, Current: &protocol.Release{ID: "r-00000000000000000001"}}}}
	if s := source(t, native, have); s.Action != plan.ActionNoOp {
		t.Errorf("registered: %+v", s)
	}
	if s := source(t, load(t, "wrapped"), have); s == nil || s.Action != plan.ActionDelete {
		t.Errorf("a wrapped service writes no event log of its own; its source goes: %+v", s)
	}
	if s := source(t, load(t, "wrapped"), &protocol.Facts{}); s != nil {
		t.Errorf("a wrapped service gets a source: %+v", s)
	}
}
