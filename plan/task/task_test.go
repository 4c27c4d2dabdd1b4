package task_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/plan/task"
)

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir(),
		Environ: []string{"GSD_VAR_winrm_password=example-only", "GSD_VAR_token=s3cret"}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

const hosts = `
variable "winrm_password" {
  type      = string
  sensitive = true
}
variable "token" {
  type      = string
  sensitive = true
}
host "jobs1" {
  address = "jobs1.example.internal"
  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}
build "report" {
  package = "./services/report"
}
`

const nightly = `
task "nightly" {
  hosts  = ["jobs1"]
  binary = build.report
  env    = { MODE = "daily", TOKEN = var.token }
  trigger {
    daily = "02:00"
  }
}
`

var arts = map[string]*build.Artifact{"build.report": {Build: "report", Path: "/cache/report.exe", SHA256: strings.Repeat("c", 64), Size: 10}}

func make1(t *testing.T, cfg *config.Config, f *protocol.Facts) *plan.Step {
	t.Helper()
	p, err := plan.Make(cfg, arts, map[string]plan.HostFacts{"jobs1": {Facts: f}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Hosts[0].Steps {
		if s.Kind == protocol.KindTask {
			return s
		}
	}
	return nil
}

// applied is what the host reports once the agent activated the
// release: the spec without secrets, salted hashes of them.
func applied(t *testing.T, cfg *config.Config) *protocol.Facts {
	t.Helper()
	spec := task.Spec(cfg.Task("nightly"), arts["build.report"])
	last, _ := json.Marshal(spec.WithoutSecrets())
	hashes := map[string]protocol.PasswordHash{}
	for k, v := range spec.Secrets() {
		hashes[k], _ = protocol.NewPasswordHash(v)
	}
	return &protocol.Facts{Artifacts: []string{spec.Artifact}, Resources: []protocol.ResourceFacts{{Kind: protocol.KindTask, Name: "nightly", Installed: true,
		LastApplied: last, Secrets: hashes, Current: &protocol.Release{ID: "r-00000000000000000001", Version: spec.Version}}}}
}

func changes(s *plan.Step) string {
	var out []string
	for _, c := range s.Changes {
		o, n := "-", "-"
		if c.Old != nil {
			o = *c.Old
		}
		if c.New != nil {
			n = *c.New
		}
		out = append(out, c.Attribute+":"+o+">"+n)
	}
	return strings.Join(out, " ")
}

func TestTaskPlanned(t *testing.T) {
	cfg := load(t, hosts+nightly)
	create := make1(t, cfg, &protocol.Facts{})
	if create.Action != plan.ActionCreate || create.Address != "task.nightly" || strings.Join(create.Secrets, ",") != "env.MODE,env.TOKEN" {
		t.Fatalf("create: %+v", create)
	}
	if c := changes(create); !strings.Contains(c, "env.MODE:->daily") || !strings.Contains(c, "env.TOKEN:->(sensitive)") || strings.Contains(c, "s3cret") {
		t.Errorf("create shows: %s", c)
	}
	if strings.Contains(string(create.Spec), "s3cret") || strings.Contains(string(create.Spec), `"MODE":"daily"`) {
		t.Errorf("the plan's spec holds an environment value: %s", create.Spec)
	}
	have := applied(t, cfg)
	if s := make1(t, cfg, have); s.Action != plan.ActionNoOp {
		t.Fatalf("after apply: %+v %s", s, changes(s))
	}

	for _, c := range []struct{ from, to, want string }{
		{`MODE = "daily"`, `MODE = "weekly"`, "env.MODE:(changed)>weekly"},
		{`var.token`, `"plain"`, "env.TOKEN:(changed)>plain"},
		{`daily = "02:00"`, `daily = "03:00"`, "triggers:daily 02:00>daily 03:00"},
		{"trigger {", "time_limit = \"2h\"\n  trigger {", "time_limit:72h>2h"},
		{"trigger {", "enabled = false\n  trigger {", "enabled:true>false"},
	} {
		s := make1(t, load(t, hosts+strings.Replace(nightly, c.from, c.to, 1)), have)
		if s.Action != plan.ActionUpdate || changes(s) != c.want || s.Restart || s.Effect != protocol.EffectNone {
			t.Errorf("%s → %s: %s %s", c.from, c.to, s.Action, changes(s))
		}
	}
	// A new binary is uploaded and switched to in place.
	bin := arts["build.report"]
	arts["build.report"] = &build.Artifact{Build: "report", Path: "/cache/report2.exe", SHA256: strings.Repeat("d", 64), Size: 10}
	p, _ := plan.Make(cfg, arts, map[string]plan.HostFacts{"jobs1": {Facts: have}})
	arts["build.report"] = bin
	if s := p.Hosts[0].Steps[0]; s.Action != plan.ActionUpdate || !strings.Contains(changes(s), "binary:cccccccccccc>dddddddddddd") || len(p.Hosts[0].Uploads) != 1 {
		t.Errorf("new binary: %s, uploads %+v", changes(s), p.Hosts[0].Uploads)
	}

	// Changed by hand on the host, or removed: put back.
	drifted := applied(t, cfg)
	drifted.Resources[0].Drift = []string{"definition"}
	if s := make1(t, cfg, drifted); s.Action != plan.ActionUpdate || changes(s) != "definition:(changed on the host)>(as released)" {
		t.Errorf("drift: %s", changes(s))
	}
	gone := applied(t, cfg)
	gone.Resources[0].Installed = false
	if s := make1(t, cfg, gone); s.Action != plan.ActionCreate {
		t.Errorf("removed by hand: %+v", s)
	}

	// Not in the configuration any more: deleted, and only with -target
	// when it is named.
	if s := make1(t, load(t, hosts), have); s == nil || s.Action != plan.ActionDelete {
		t.Errorf("removal: %+v", s)
	}
	if got, err := plan.SecretsFor(cfg, create, "jobs1"); err != nil || got["env.TOKEN"] != "s3cret" {
		t.Errorf("secrets: %v %v", got, err)
	}
}
