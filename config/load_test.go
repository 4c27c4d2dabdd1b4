package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const hostAndBuild = `
host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web", zone = "a" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
host "web2" {
  address = "web2.example.internal"
  labels  = { role = "web", zone = "b" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
host "db1" {
  address = "db1.example.internal"
  labels  = { role = "db" }
  ssh {
    user = "deploy"
  }
}
variable "pw" {
  type      = string
  sensitive = true
  default   = "s3cret-password"
}
build "app" {
  package = "./cmd/app"
}
`

// load writes files into a temporary directory and loads it.
func load(t *testing.T, files map[string]string, opts Options) (*Config, hcl.Diagnostics) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range opts.VarArgs {
		if a.File {
			opts.VarArgs[i].Value = filepath.Join(dir, a.Value)
		}
	}
	opts.Paths = []string{dir}
	return Load(opts)
}

func mustLoad(t *testing.T, files map[string]string, opts Options) *Config {
	t.Helper()
	cfg, diags := load(t, files, opts)
	if diags.HasErrors() {
		t.Fatalf("unexpected errors: %s", diags.Error())
	}
	return cfg
}

func TestVariablePrecedence(t *testing.T) {
	files := map[string]string{
		"main.hcl": hostAndBuild + `
variable "version" {
  default = "from-default"
}
service "api" {
  hosts   = ["web1"]
  binary  = build.app
  version = var.version
}
`,
	}
	cases := []struct {
		name    string
		extra   map[string]string
		env     []string
		varArgs []VarArg
		want    string
	}{
		{name: "default", want: "from-default"},
		{name: "env beats default", env: []string{"GSD_VAR_version=from-env"}, want: "from-env"},
		{name: "gsd.gsdvars beats env", env: []string{"GSD_VAR_version=from-env"},
			extra: map[string]string{"gsd.gsdvars": `version = "from-gsdvars"`}, want: "from-gsdvars"},
		{name: "auto files in name order beat gsd.gsdvars",
			extra: map[string]string{
				"gsd.gsdvars":      `version = "from-gsdvars"`,
				"a.auto.gsdvars":   `version = "from-a"`,
				"b.auto.gsdvars":   `version = "from-b"`,
				"notes.gsdvars.bk": `version = "ignored"`,
			}, want: "from-b"},
		{name: "-var beats auto files",
			extra:   map[string]string{"a.auto.gsdvars": `version = "from-a"`},
			varArgs: []VarArg{{Value: "version=from-flag"}}, want: "from-flag"},
		{name: "later -var-file beats earlier -var",
			extra:   map[string]string{"x.vars": `version = "from-file"`},
			varArgs: []VarArg{{Value: "version=from-flag"}, {File: true, Value: "x.vars"}}, want: "from-file"},
		{name: "later -var beats earlier -var-file",
			extra:   map[string]string{"x.vars": `version = "from-file"`},
			varArgs: []VarArg{{File: true, Value: "x.vars"}, {Value: "version=from-flag"}}, want: "from-flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			all := map[string]string{}
			for k, v := range files {
				all[k] = v
			}
			for k, v := range tc.extra {
				all[k] = v
			}
			cfg := mustLoad(t, all, Options{Environ: tc.env, VarArgs: append([]VarArg(nil), tc.varArgs...)})
			if got := cfg.Service("api").Version; got != tc.want {
				t.Errorf("version = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTypedVariablesFromStrings(t *testing.T) {
	files := map[string]string{"main.hcl": hostAndBuild + `
variable "ports" {
  type = list(number)
}
variable "hosts" {
  type    = list(string)
  default = ["web1"]
}
service "api" {
  hosts  = var.hosts
  binary = build.app
  args   = [for p in var.ports : tostring(p)]
}
`}
	cfg := mustLoad(t, files, Options{VarArgs: []VarArg{{Value: "ports=[80, 443]"}}, Environ: []string{`GSD_VAR_hosts=["web1","web2"]`}})
	svc := cfg.Service("api")
	if got := strings.Join(svc.Hosts, ","); got != "web1,web2" {
		t.Errorf("hosts = %s", got)
	}
	if len(svc.Args) != 2 || svc.Args[0].Value != "80" || svc.Args[1].Value != "443" {
		t.Errorf("args = %v", svc.Args)
	}

	_, diags := load(t, files, Options{VarArgs: []VarArg{{Value: "ports=eighty"}}})
	if !hasSummary(diags, "Invalid value for variable") {
		t.Errorf("a non-list -var for list(number) should fail: %v", diags)
	}
	_, diags = load(t, files, Options{VarArgs: []VarArg{{Value: "nope=1"}, {Value: "ports"}}})
	if !hasSummary(diags, "Value for undeclared variable") || !hasSummary(diags, "Invalid -var option") {
		t.Errorf("undeclared -var and malformed -var should both be reported: %v", diags)
	}
}

func hasSummary(diags hcl.Diagnostics, summary string) bool {
	for _, d := range diags {
		if d.Summary == summary {
			return true
		}
	}
	return false
}

func TestUndeclaredInAutoFileIsWarning(t *testing.T) {
	files := map[string]string{
		"main.hcl":        hostAndBuild + `service "api" {` + "\n hosts = [\"web1\"]\n binary = build.app\n}\n",
		"x.auto.gsdvars":  `stray = 1`,
		"explicit.values": `stray = 1`,
	}
	_, diags := load(t, files, Options{})
	if diags.HasErrors() || !hasSummary(diags, "Value for undeclared variable") {
		t.Errorf("auto file: want a warning only, got %v", diags)
	}
	_, diags = load(t, files, Options{VarArgs: []VarArg{{File: true, Value: "explicit.values"}}})
	if !diags.HasErrors() {
		t.Errorf("explicit var file: want an error for an undeclared variable")
	}
}

// Sensitive values must stay marked through expressions, functions and
// templates, and never show through String or JSON.
func TestSensitivityPropagates(t *testing.T) {
	files := map[string]string{
		"main.hcl": hostAndBuild + `
locals {
  dsn = "postgres://app:${var.pw}@db/app"
}
service "api" {
  hosts  = ["web1"]
  binary = build.app
  args   = ["-v", upper(var.pw)]
  env    = { DSN = local.dsn, PLAIN = "x" }
  file "app.yaml" {
    content = templatefile("app.yaml.tpl", { secret = var.pw })
  }
  file "plain.txt" {
    content = "hello"
  }
  account {
    name     = "CORP\\svc-api"
    password = var.pw
  }
}
`,
		"app.yaml.tpl": "secret: ${secret}\n",
	}
	cfg := mustLoad(t, files, Options{})
	svc := cfg.Service("api")
	checks := map[string]Text{
		"args[1]":          svc.Args[1],
		"env.DSN":          svc.Env["DSN"],
		"file app.yaml":    svc.Files[0].Content,
		"account password": svc.Account.Password,
		"winrm password":   cfg.Host("web1").WinRM.Password,
	}
	for what, txt := range checks {
		if !txt.Sensitive {
			t.Errorf("%s lost its sensitivity", what)
		}
		if !strings.Contains(txt.Value, "s3cret-password") && !strings.Contains(txt.Value, "S3CRET-PASSWORD") {
			t.Errorf("%s = %q, want the secret inside", what, txt.Value)
		}
		b, _ := json.Marshal(txt)
		if strings.Contains(string(b), "s3cret") || strings.Contains(txt.String(), "s3cret") {
			t.Errorf("%s shows its secret: %s", what, b)
		}
	}
	if svc.Env["PLAIN"].Sensitive || svc.Args[0].Sensitive || svc.Files[1].Content.Sensitive {
		t.Errorf("plain values were marked sensitive")
	}
	whole, _ := json.Marshal(cfg.Services)
	if strings.Contains(strings.ToLower(string(whole)), "s3cret") {
		t.Errorf("the service model shows a secret in JSON: %s", whole)
	}
}

func TestHostSelectorsAndDefaults(t *testing.T) {
	cfg := mustLoad(t, map[string]string{"main.hcl": hostAndBuild + `
service "web" {
  hosts  = { role = "web" }
  binary = build.app
}
service "zone_a" {
  hosts  = { role = "web", zone = "a" }
  binary = build.app
}
service "db" {
  hosts  = [host.db1]
  binary = build.app
  mode   = "wrapped"
  rollout {
    max_parallel = "50%"
  }
}
`}, Options{})
	if got := strings.Join(cfg.Service("web").Hosts, ","); got != "web1,web2" {
		t.Errorf("web hosts = %s", got)
	}
	if got := strings.Join(cfg.Service("zone_a").Hosts, ","); got != "web1" {
		t.Errorf("zone_a hosts = %s", got)
	}
	web := cfg.Service("web")
	if web.Start != StartAuto || web.Mode != ModeNative || web.StopTimeout != DefaultStopTimeout ||
		web.Account.Name != `NT SERVICE\web` || web.DisplayName != "web" || !web.Rollout.AutoRollback ||
		web.Rollout.MaxParallel != 1 || web.Rollout.RollbackScope != "batch" || web.Log != nil {
		t.Errorf("defaults not applied: %+v", web)
	}
	db := cfg.Service("db")
	if db.Log == nil || db.Log.MaxSize != DefaultLogMaxSize || db.Log.Keep != DefaultLogKeep {
		t.Errorf("wrapped service log defaults: %+v", db.Log)
	}
	if db.Rollout.MaxPercent != 50 || db.Rollout.MaxParallel != 0 {
		t.Errorf("percentage rollout: %+v", db.Rollout)
	}
	w := cfg.Host("web1").WinRM
	if !w.HTTPS || w.Port != DefaultWinRMHTTPSPort || w.Auth != DefaultWinRMAuth || w.Timeout != DefaultWinRMTimeout {
		t.Errorf("winrm defaults: %+v", w)
	}
	if s := cfg.Host("db1").SSH; s == nil || s.Port != DefaultSSHPort || cfg.Host("db1").Transport() != "ssh" {
		t.Errorf("ssh defaults: %+v", s)
	}
}

func TestCycleIsNamed(t *testing.T) {
	_, diags := Load(Options{Paths: []string{"../testdata/invalid/dependency_cycle.hcl"}})
	for _, d := range diags {
		if d.Summary == "Dependency cycle" {
			if !strings.Contains(d.Detail, "service.a → service.b → service.c → service.a") {
				t.Errorf("cycle detail does not name the cycle: %s", d.Detail)
			}
			return
		}
	}
	t.Fatal("no cycle reported")
}

func TestValidateModeAllowsUnsetVariables(t *testing.T) {
	files := map[string]string{"main.hcl": `
variable "pw" {
  type      = string
  sensitive = true
}
variable "targets" {
  type = list(string)
}
host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
service "api" {
  hosts  = var.targets
  binary = "missing.exe"
}
`}
	_, diags := load(t, files, Options{AllowUnsetVariables: true})
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	// The unset variables are skipped; the missing binary is still found.
	if got := strings.Join(summaries, ","); got != "Binary not found" {
		t.Errorf("validate mode diagnostics = %s", got)
	}
	_, diags = load(t, files, Options{})
	if !hasSummary(diags, "No value for required variable") {
		t.Errorf("plan mode must require values")
	}
}

func TestStarterValidatesAndIsFormatted(t *testing.T) {
	_, diags := load(t, map[string]string{"gsd.hcl": string(Starter)}, Options{AllowUnsetVariables: true})
	if len(diags) > 0 {
		t.Fatalf("starter has diagnostics: %s", diags.Error())
	}
	out, fd := Format("gsd.hcl", Starter)
	if fd.HasErrors() || string(out) != string(Starter) {
		t.Errorf("starter is not in canonical format")
	}
}

func TestLoadFromSources(t *testing.T) {
	cfg, diags := Load(Options{Sources: map[string][]byte{
		"main.hcl":       []byte(hostAndBuild + "service \"api\" {\n hosts = [\"web1\"]\n binary = build.app\n version = var.v\n}\nvariable \"v\" {}\n"),
		"x.auto.gsdvars": []byte(`v = "9.9.9"`),
	}, Dir: t.TempDir()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if cfg.Service("api").Version != "9.9.9" {
		t.Errorf("version from in-memory var file = %q", cfg.Service("api").Version)
	}
}

// Deeply nested input must be refused with a diagnostic, not overflow the
// parser's stack (a fatal error no recover catches).
func TestDeepNestingRefused(t *testing.T) {
	for _, tc := range []struct{ open, close string }{{"(", ")"}, {"[", "]"}, {`"${`, `}"`}} {
		src := "locals {\n  x = " + strings.Repeat(tc.open, 200000) + "1" + strings.Repeat(tc.close, 200000) + "\n}\n"
		_, diags := Load(Options{Sources: map[string][]byte{"deep.hcl": []byte(src)}, Dir: t.TempDir()})
		if !hasSummary(diags, "Nesting too deep") {
			t.Errorf("%s x200000: want a nesting diagnostic, got %v", tc.open, diags)
		}
	}
	// Many brackets side by side are fine.
	var b strings.Builder
	b.WriteString("locals {\n")
	for i := 0; i < 25000; i++ {
		fmt.Fprintf(&b, "  l%d = [1]\n", i)
	}
	b.WriteString("}\n")
	if _, diags := Load(Options{Sources: map[string][]byte{"wide.hcl": []byte(b.String())}, Dir: t.TempDir()}); diags.HasErrors() {
		t.Errorf("wide file refused: %v", diags[0])
	}
}

// Errors from functions quote their arguments; when an argument is
// sensitive, the details must be withheld. gsd's own messages must not
// print sensitive numbers either.
func TestSecretsStayOutOfDiagnostics(t *testing.T) {
	files := map[string]string{"main.hcl": hostAndBuild + `
variable "token" {
  type      = string
  sensitive = true
}
variable "pin" {
  type      = number
  sensitive = true
  default   = 2.5
}
locals {
  n = parseint(var.token, 10)
}
service "api" {
  hosts       = ["web1"]
  binary      = build.app
  description = tostring(tonumber(var.token))
  rollout {
    canary       = var.pin
    max_parallel = var.token
  }
}
`}
	cfg, diags := load(t, files, Options{VarArgs: []VarArg{{Value: "token=hunter2("}}})
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	for _, d := range diags {
		if strings.Contains(d.Detail+d.Summary, "hunter2") || strings.Contains(d.Detail, "2.5") {
			t.Errorf("diagnostic shows a secret: %s: %s", d.Summary, d.Detail)
		}
	}
	_ = cfg
}

func TestNullDefaultIsOptional(t *testing.T) {
	cfg := mustLoad(t, map[string]string{"main.hcl": hostAndBuild + `
variable "stop" {
  type    = string
  default = null
}
service "api" {
  hosts        = ["web1"]
  binary       = build.app
  stop_timeout = var.stop
}
`}, Options{})
	if cfg.Service("api").StopTimeout != DefaultStopTimeout {
		t.Errorf("a null variable should leave the attribute at its default")
	}
}

func TestLocalIndexReferences(t *testing.T) {
	cfg := mustLoad(t, map[string]string{"main.hcl": hostAndBuild + `
locals {
  a = "v${local["z"]}"
  z = 1
}
service "api" {
  hosts   = ["web1"]
  binary  = build.app
  version = local.a
}
`}, Options{})
	if cfg.Service("api").Version != "v1" {
		t.Errorf("version = %q", cfg.Service("api").Version)
	}
}

// A bad -var value is one error, not also "no value for required
// variable".
func TestBadVarDoesNotCascade(t *testing.T) {
	files := map[string]string{"main.hcl": hostAndBuild + `
variable "pins" {
  type = list(number)
}
`}
	for _, opts := range []Options{
		{VarArgs: []VarArg{{Value: `pins=["a"]`}}},
		{Environ: []string{"GSD_VAR_pins=x"}},
	} {
		_, diags := load(t, files, opts)
		if len(diags) != 1 || diags[0].Summary != "Invalid value for variable" {
			t.Errorf("want exactly one invalid-value error, got %v", diags)
		}
	}
}

// A host may describe both transports and choose one.
func TestHostWithBothTransports(t *testing.T) {
	cfg := mustLoad(t, map[string]string{"main.hcl": hostAndBuild + `
host "dual" {
  address   = "dual.example.internal"
  transport = "ssh"
  port      = 2222
  winrm {
    user     = "deploy"
    password = var.pw
  }
  ssh {
    user = "deploy"
  }
}
`}, Options{})
	h := cfg.Host("dual")
	if h.Transport() != "ssh" || h.SSH == nil || h.WinRM == nil || h.SSH.Port != 2222 || h.WinRM.Port != DefaultWinRMHTTPSPort {
		t.Errorf("dual host: transport %q ssh %+v winrm %+v", h.Transport(), h.SSH, h.WinRM)
	}
	if cfg.Host("web1").Transport() != "winrm" || cfg.Host("db1").Transport() != "ssh" {
		t.Errorf("single-block hosts must use their only transport")
	}
}

func TestWithServicesHasItsOwnLookups(t *testing.T) {
	cfg := mustLoad(t, map[string]string{"main.hcl": hostAndBuild + "service \"api\" {\n hosts = [\"web1\"]\n binary = build.app\n}\n"}, Options{})
	if cfg.Service("api") == nil {
		t.Fatal("api missing")
	}
	empty := cfg.WithServices(nil)
	if empty.Service("api") != nil || len(empty.Services) != 0 || empty.Host("web1") == nil {
		t.Errorf("the copy must see only its own services")
	}
	if cfg.Service("api") == nil {
		t.Errorf("the original changed")
	}
}

func TestTransportOfHostMadeInCode(t *testing.T) {
	if (&Host{SSH: &SSH{}}).Transport() != "ssh" || (&Host{WinRM: &WinRM{}}).Transport() != "winrm" ||
		(&Host{WinRM: &WinRM{}, SSH: &SSH{}, TransportName: "ssh"}).Transport() != "ssh" {
		t.Error("Transport must follow the single block, or the choice")
	}
}
