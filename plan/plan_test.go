package plan

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

const base = `
variable "pw" {
  type      = string
  sensitive = true
  default   = "db-s3cret"
}
host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
host "web2" {
  address = "web2.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
build "api" {
  package = "./cmd/api"
}
build "db" {
  package = "./cmd/db"
}
`

const apiAndDB = `
service "db" {
  hosts  = ["web1"]
  binary = build.db
  start  = "auto"
}
service "api" {
  hosts        = ["web1"]
  binary       = build.api
  version      = "1.0.0"
  display_name = "Orders API"
  args         = ["-listen", ":8080"]
  depends_on   = [service.db, "Tcpip"]
  env          = { MODE = "prod", DB_PASSWORD = var.pw }
  file "config.yaml" {
    content   = "port: 8080"
    on_change = "reload"
  }
  file "certs.pem" {
    content = "CERT"
  }
}
`

func loadConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(config.Options{Paths: []string{dir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

var arts = map[string]*build.Artifact{
	"build.api": {Build: "api", Path: "/cache/api.exe", SHA256: strings.Repeat("a", 64), Size: 1000},
	"build.db":  {Build: "db", Path: "/cache/db.exe", SHA256: strings.Repeat("d", 64), Size: 2000},
}

// deployed returns the facts a host reports after the agent applied spec
// and the service runs: what a no-op plan must find.
func deployed(svc *config.Service, spec protocol.ServiceSpec) protocol.ServiceFacts {
	redacted := spec.Redacted()
	start := spec.Start
	f := protocol.ServiceFacts{
		Name:      spec.Name,
		Mode:      spec.Mode,
		Installed: true,
		Config: &protocol.SCMConfig{
			BinaryPath:   `C:\ProgramData\gsd\artifacts\` + spec.Artifact + `\` + spec.Name + ".exe",
			Args:         spec.Args,
			StartType:    start,
			DelayedStart: start == config.StartDelayed,
			Account:      spec.Account.Name,
			Dependencies: spec.DependsOn,
			DisplayName:  spec.DisplayName,
			Description:  spec.Description,
		},
		Status:       &protocol.ServiceStatus{State: "running", PID: 4242},
		Recovery:     spec.Recovery,
		EnvSHA256:    protocol.HashEnv(spec.Env),
		BinarySHA256: spec.Artifact,
		Current:      &protocol.Release{Artifact: spec.Artifact, Version: spec.Version},
		LastApplied:  &redacted,
	}
	if spec.Mode == config.ModeWrapped {
		f.Config.Args = []string{"service-host", "-service", spec.Name}
	}
	if pw := spec.Account.Password; pw != "" {
		salt := strings.Repeat("5a", 16)
		f.Password = &protocol.PasswordHash{Salt: salt, SHA256: protocol.HashPassword(salt, pw)}
	}
	for _, file := range svc.Files {
		f.Files = append(f.Files, protocol.FileFacts{Name: file.Name, SHA256: protocol.HashEnv(map[string]string{"f": file.Content.Value})["f"]})
	}
	return f
}

// converged returns facts for web1 in which every service of cfg is
// deployed as configured, and its artifacts are held.
func converged(cfg *config.Config, host string) *protocol.Facts {
	f := &protocol.Facts{}
	for _, svc := range cfg.Services {
		if !contains(svc.Hosts, host) {
			continue
		}
		art := arts[ArtifactKey(svc.Binary)]
		f.Services = append(f.Services, deployed(svc.On(host), Spec(svc.On(host), art)))
		f.Artifacts = append(f.Artifacts, art.SHA256)
	}
	return f
}

func step(t *testing.T, p *Plan, host, svc string) *Step {
	t.Helper()
	for _, h := range p.Hosts {
		if h.Host != host {
			continue
		}
		for _, s := range h.Steps {
			if s.Service == svc {
				return s
			}
		}
	}
	t.Fatalf("no step for %s on %s", svc, host)
	return nil
}

func hostPlan(p *Plan, host string) *HostPlan {
	for _, h := range p.Hosts {
		if h.Host == host {
			return h
		}
	}
	return nil
}

func changed(s *Step) []string {
	var out []string
	for _, c := range s.Changes {
		out = append(out, c.Attribute)
	}
	return out
}

func mustMake(t *testing.T, cfg *config.Config, facts map[string]HostFacts) *Plan {
	t.Helper()
	p, err := Make(cfg, arts, facts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFreshHostCreatesInDependencyOrder(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}})
	hp := hostPlan(p, "web1")
	if len(hp.Steps) != 2 || hp.Steps[0].Service != "db" || hp.Steps[1].Service != "api" {
		t.Fatalf("want db then api, got %v", hp.Steps)
	}
	for _, s := range hp.Steps {
		if s.Action != ActionCreate || !s.Start {
			t.Errorf("%s: action %s start %v", s.Service, s.Action, s.Start)
		}
	}
	if len(hp.Uploads) != 2 || p.Summary.Add != 2 || p.Summary.Change != 0 {
		t.Errorf("uploads %v summary %+v", hp.Uploads, p.Summary)
	}
	if api := step(t, p, "web1", "api"); api.Version != "1.0.0" || step(t, p, "web1", "db").Version != ShortHash(arts["build.db"].SHA256) {
		t.Errorf("release labels: api %q db %q", api.Version, step(t, p, "web1", "db").Version)
	}
	if hostPlan(p, "web2") != nil {
		t.Errorf("a host without facts is not targeted and must not appear")
	}
}

func TestConvergedHostIsNoOp(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: converged(cfg, "web1")}})
	for _, s := range hostPlan(p, "web1").Steps {
		if s.Action != ActionNoOp || s.Restart || s.Reload || len(s.Changes) > 0 {
			t.Errorf("%s: %s %v restart=%v", s.Service, s.Action, changed(s), s.Restart)
		}
	}
	if p.Summary.HasChanges() || len(hostPlan(p, "web1").Uploads) != 0 {
		t.Errorf("summary %+v uploads %v", p.Summary, hostPlan(p, "web1").Uploads)
	}
}

// Each rule: the attribute changed on the host, what the plan must say.
func TestDiffRules(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	cases := []struct {
		name    string
		mutate  func(f *protocol.ServiceFacts, facts *protocol.Facts)
		action  Action
		changes string
		restart string // reasons, comma-joined; "" for none
		reload  bool
		start   bool
	}{
		{name: "new binary", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.BinarySHA256 = strings.Repeat("0", 64)
			f.Current.Artifact = f.BinarySHA256
		}, action: ActionReplace, changes: "binary", restart: "binary changed"},
		{name: "display name edited by hand", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.DisplayName = "Someone's name"
		}, action: ActionUpdate, changes: "display_name"},
		{name: "arguments", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.Args = []string{"-listen", ":9090"}
		}, action: ActionUpdate, changes: "args", restart: "arguments changed"},
		{name: "start type", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.StartType = config.StartManual
		}, action: ActionUpdate, changes: "start"},
		{name: "account", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.Account = `NT AUTHORITY\LocalService`
		}, action: ActionUpdate, changes: "account", restart: "account changed"},
		{name: "account spelled differently is the same", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.Account = strings.ToUpper(f.Config.Account)
		}, action: ActionNoOp},
		{name: "dependencies in another order and case are the same", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.Dependencies = []string{"TCPIP", "db"}
		}, action: ActionNoOp},
		{name: "dependency removed on the host", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Config.Dependencies = []string{"db"}
		}, action: ActionUpdate, changes: "depends_on"},
		{name: "secret env value", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.EnvSHA256["DB_PASSWORD"] = strings.Repeat("f", 64)
		}, action: ActionUpdate, changes: "env.DB_PASSWORD", restart: "environment changed"},
		{name: "env variable set by hand", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.EnvSHA256["EXTRA"] = strings.Repeat("e", 64)
		}, action: ActionUpdate, changes: "env.EXTRA", restart: "environment changed"},
		{name: "reloadable file", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Files[1].SHA256 = strings.Repeat("c", 64) // config.yaml, after certs.pem
		}, action: ActionUpdate, changes: "file.config.yaml", reload: true},
		{name: "restarting file deleted by hand", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Files[0].Missing = true
		}, action: ActionUpdate, changes: "file.certs.pem", restart: "file certs.pem changed"},
		{name: "reload and restart together restart", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Files[1].SHA256 = strings.Repeat("c", 64)
			f.Config.Args = nil
		}, action: ActionUpdate, changes: "args,file.config.yaml", restart: "arguments changed"},
		{name: "stopped service that should run is started, not restarted", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Status.State = "stopped"
			f.Config.Args = nil
		}, action: ActionUpdate, changes: "args", start: true},
		{name: "recovery actions left by a removed recovery block", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Recovery = &protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "restart", DelayMS: 5000}}, ResetAfterMS: 86400000}
		}, action: ActionUpdate, changes: "recovery"},
		{name: "recovery on non-crash failures alone is cleared too", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Recovery = &protocol.Recovery{Actions: []protocol.RecoveryAction{}, OnNonCrash: true}
		}, action: ActionUpdate, changes: "recovery"},
		{name: "empty recovery policy matches no recovery block", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Recovery = &protocol.Recovery{Actions: []protocol.RecoveryAction{}}
		}, action: ActionNoOp},
		{name: "service deleted by hand is created again", mutate: func(f *protocol.ServiceFacts, _ *protocol.Facts) {
			f.Installed = false
		}, action: ActionCreate, start: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			facts := converged(cfg, "web1")
			for i := range facts.Services {
				if facts.Services[i].Name == "api" {
					tc.mutate(&facts.Services[i], facts)
				}
			}
			p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
			s := step(t, p, "web1", "api")
			got := strings.Join(changed(s), ",")
			if tc.action == ActionCreate {
				got = tc.changes // creation lists every attribute
			}
			if s.Action != tc.action || got != tc.changes || strings.Join(s.RestartReasons, ",") != tc.restart ||
				s.Restart != (tc.restart != "") || s.Reload != tc.reload || s.Start != tc.start {
				t.Errorf("got %s changes=%q restart=%v %q reload=%v start=%v", s.Action, got, s.Restart, s.RestartReasons, s.Reload, s.Start)
			}
			if db := step(t, p, "web1", "db"); db.Action != ActionNoOp {
				t.Errorf("an untouched service changed: %s %v", db.Action, changed(db))
			}
		})
	}
}

func TestArtifactAlreadyOnHostIsNotUploaded(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	facts := converged(cfg, "web1")
	newSHA := strings.Repeat("b", 64)
	facts.Artifacts = append(facts.Artifacts, newSHA) // staged by an earlier, interrupted apply
	next := map[string]*build.Artifact{"build.api": {SHA256: newSHA, Size: 5}, "build.db": arts["build.db"]}
	p, err := Make(cfg, next, map[string]HostFacts{"web1": {Facts: facts}})
	if err != nil {
		t.Fatal(err)
	}
	if s := step(t, p, "web1", "api"); s.Action != ActionReplace {
		t.Fatalf("api: %s", s.Action)
	}
	if u := hostPlan(p, "web1").Uploads; len(u) != 0 {
		t.Errorf("uploads %v, want none", u)
	}
}

func TestRemovedServicesAreDeletedDependentsFirst(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	facts := converged(cfg, "web1")
	empty := loadConfig(t, base)
	p := mustMake(t, empty, map[string]HostFacts{"web1": {Facts: facts}})
	hp := hostPlan(p, "web1")
	if len(hp.Steps) != 2 || hp.Steps[0].Service != "api" || hp.Steps[1].Service != "db" {
		t.Fatalf("want api deleted before db, got %v %v", hp.Steps[0], hp.Steps[1])
	}
	if p.Summary.Destroy != 2 || hp.Steps[0].Action != ActionDelete || hp.Steps[0].OldVersion != "1.0.0" {
		t.Errorf("summary %+v step %+v", p.Summary, hp.Steps[0])
	}
}

func TestUnreachableHostFailsAlone(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB+`
service "edge" {
  hosts  = ["web2"]
  binary = build.api
}
`)
	p := mustMake(t, cfg, map[string]HostFacts{
		"web1": {Facts: &protocol.Facts{}},
		"web2": {Err: errors.New("dial tcp web2.example.internal:5986: connection refused")},
	})
	if hp := hostPlan(p, "web2"); hp.Error == "" || len(hp.Steps) != 0 || !strings.Contains(hp.Error, "connection refused") {
		t.Errorf("web2: %+v", hp)
	}
	if p.Summary.FailedHosts != 1 || p.Summary.Add != 2 {
		t.Errorf("summary %+v", p.Summary)
	}
}

func TestWrappedArgsComparedWithLastApplied(t *testing.T) {
	cfg := loadConfig(t, base+`
service "worker" {
  hosts  = ["web1"]
  binary = build.api
  mode   = "wrapped"
  args   = ["-interval", "1s"]
}
`)
	facts := converged(cfg, "web1")
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	if s := step(t, p, "web1", "worker"); s.Action != ActionNoOp {
		t.Fatalf("the wrapper's own command line must not count as a change: %v", changed(s))
	}
	facts.Services[0].LastApplied.Args = []string{"-interval", "5s"}
	p = mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	if s := step(t, p, "web1", "worker"); !s.Restart || strings.Join(changed(s), ",") != "args" {
		t.Errorf("changed wrapped args: %v restart=%v", changed(s), s.Restart)
	}
}

// The plan carries no secret, in any form a user could read.
func TestPlanHoldsNoSecret(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	for _, facts := range []*protocol.Facts{{}, converged(cfg, "web1")} {
		if len(facts.Services) > 0 {
			facts.Services[0].EnvSHA256["DB_PASSWORD"] = strings.Repeat("f", 64) // api
		}
		p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), "db-s3cret") {
			t.Errorf("plan JSON holds the secret: %s", b)
		}
		if !strings.Contains(string(b), `"env.DB_PASSWORD"`) || !strings.Contains(string(b), sensitiveValue) {
			t.Errorf("the secret's change should be shown as sensitive: %s", b)
		}
	}
}

func TestFingerprints(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	facts := converged(cfg, "web1")
	p1 := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})

	// A restart (new pid, wrapper counters) does not make a plan stale.
	facts.Services[0].Status.PID = 9999
	p2 := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	if p1.Fingerprints.Facts["web1"] != p2.Fingerprints.Facts["web1"] {
		t.Errorf("a new pid changed the facts fingerprint")
	}
	// A changed binary on the host does.
	facts.Services[0].BinarySHA256 = strings.Repeat("9", 64)
	p3 := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	if p3.Fingerprints.Facts["web1"] == p1.Fingerprints.Facts["web1"] {
		t.Errorf("a changed binary did not change the facts fingerprint")
	}
	// A changed secret changes the secrets fingerprint, and only that:
	// the config fingerprint holds no hash a guess could be checked with.
	other := loadConfig(t, strings.Replace(base, "db-s3cret", "rotated", 1)+apiAndDB)
	p4 := mustMake(t, other, map[string]HostFacts{"web1": {Facts: facts}})
	if p4.Fingerprints.Secrets == p1.Fingerprints.Secrets || p1.Fingerprints.Secrets == "" {
		t.Errorf("a changed secret did not change the secrets fingerprint")
	}
	if p4.Fingerprints.Config != p1.Fingerprints.Config {
		t.Errorf("a changed secret changed the config fingerprint, which must not depend on it")
	}
	if p1.Fingerprints.Artifacts["build.api"] != arts["build.api"].SHA256 {
		t.Errorf("artifact fingerprints: %v", p1.Fingerprints.Artifacts)
	}
}

// -target never touches what it does not name, not even a service the
// configuration no longer has.
func TestTargetLeavesOthersAlone(t *testing.T) {
	cfg := loadConfig(t, base+`
service "api" {
  hosts  = ["web1"]
  binary = build.api
}
`)
	facts := &protocol.Facts{Services: []protocol.ServiceFacts{{Name: "legacy", Installed: true}}}
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	if p.Summary.Destroy != 1 || p.Summary.Add != 1 {
		t.Fatalf("untargeted summary %+v", p.Summary)
	}
	Target(p, []string{"api"})
	hp := hostPlan(p, "web1")
	if len(hp.Steps) != 1 || hp.Steps[0].Service != "api" || p.Summary.Destroy != 0 || p.Summary.Add != 1 || len(hp.Uploads) != 1 {
		t.Errorf("targeted: steps %v summary %+v uploads %v", hp.Steps, p.Summary, hp.Uploads)
	}
	Target(p, []string{"legacy"})
	if len(hostPlan(p, "web1").Uploads) != 0 || p.Summary.Add != 0 {
		t.Errorf("uploads for untargeted services must go: %+v", hostPlan(p, "web1").Uploads)
	}
}

func TestCustomFilePathReachesTheRelease(t *testing.T) {
	cfg := loadConfig(t, base+`
service "api" {
  hosts  = ["web1"]
  binary = build.api
  file "c.yaml" {
    path    = "D:\\conf\\c.yaml"
    content = "x"
  }
  file "d.yaml" {
    content = "y"
  }
}
`)
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}})
	step := hostPlan(p, "web1").Steps[0]
	var spec protocol.ServiceSpec
	if err := json.Unmarshal(step.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if len(spec.Files) != 2 || spec.Files[0].Path != `D:\conf\c.yaml` || spec.Files[1].Path != "" {
		t.Fatalf("files in the release: %+v", spec.Files)
	}
	// A file moved on the host is a change even with the same bytes.
	facts := &protocol.Facts{Services: []protocol.ServiceFacts{{Name: "api", Installed: true,
		Files: []protocol.FileFacts{{Name: "c.yaml", SHA256: spec.Files[0].SHA256}, {Name: "d.yaml", SHA256: spec.Files[1].SHA256}}}}}
	p = mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	var attrs []string
	for _, c := range hostPlan(p, "web1").Steps[0].Changes {
		attrs = append(attrs, c.Attribute)
	}
	if !slices.Contains(attrs, "file.c.yaml.path") || slices.Contains(attrs, "file.d.yaml") {
		t.Errorf("changes %v: want file.c.yaml.path and nothing for d.yaml", attrs)
	}
}

func TestDurationsReadAsWritten(t *testing.T) {
	for ms, want := range map[int64]string{86400000: "24h", 5000: "5s", 90000: "1m30s", 60000: "1m", 500: "500ms", 3600000 + 1000: "1h0m1s"} {
		if got := msString(ms); got != want {
			t.Errorf("msString(%d) = %q, want %q", ms, got, want)
		}
	}
}

// A changed sensitive file shows no hash, not even a short one.
func TestSensitiveFileChangeShowsNoHash(t *testing.T) {
	cfg := loadConfig(t, base+`
service "api" {
  hosts  = ["web1"]
  binary = build.api
  file "secret.txt" {
    content = var.pw
  }
}
`)
	facts := converged(cfg, "web1")
	facts.Services[0].Files[0].SHA256 = strings.Repeat("5", 64)
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	s := step(t, p, "web1", "api")
	if len(s.Changes) != 1 || *s.Changes[0].New != sensitiveValue || *s.Changes[0].Old != sensitiveValue {
		t.Fatalf("changes %+v", s.Changes)
	}
	sum := protocol.HashEnv(map[string]string{"f": "db-s3cret"})["f"]
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), ShortHash(sum)) {
		t.Errorf("the plan holds a hash of the secret file")
	}
}

// What a saved plan's steps depend on is in its fingerprints: whether a
// service runs, the files' contents and on_change, the hosts.
func TestFingerprintsCoverWhatStepsDependOn(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	facts := converged(cfg, "web1")
	p1 := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
	facts.Services[0].Status.State = "stopped"
	if p2 := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}}); p2.Fingerprints.Facts["web1"] == p1.Fingerprints.Facts["web1"] {
		t.Errorf("a service that stopped did not change the facts fingerprint")
	}
	for _, edit := range []struct{ from, to string }{
		{`content   = "port: 8080"`, `content   = "port: 9090"`},
		{`on_change = "reload"`, `on_change = "restart"`},
		{`hosts  = ["web1"]
  binary = build.db`, `hosts  = ["web1", "web2"]
  binary = build.db`},
	} {
		other := loadConfig(t, base+strings.Replace(apiAndDB, edit.from, edit.to, 1))
		if p := mustMake(t, other, map[string]HostFacts{"web1": {Facts: facts}}); p.Fingerprints.Config == p1.Fingerprints.Config {
			t.Errorf("changing %q did not change the config fingerprint", edit.from)
		}
	}
}
