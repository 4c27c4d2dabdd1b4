package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func loadFleet(t *testing.T, env string) *Config {
	t.Helper()
	cfg, diags := Load(Options{Paths: []string{"../examples/fleet.hcl"}, Environment: env,
		Environ: []string{"GSD_VAR_winrm_password=example-only"}})
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	return cfg
}

// TestPerHostValues: a service that reads each.host is evaluated for
// each host, in its arguments, files and health check, and what does not
// read it is the same everywhere.
func TestPerHostValues(t *testing.T) {
	cfg := loadFleet(t, "production")
	web := cfg.Service("web")
	if web == nil || !slices.Equal(web.Hosts, []string{"web1", "web2", "web3"}) {
		t.Fatalf("web: %+v", web)
	}
	for host, port := range map[string]string{"web1": "8081", "web2": "8082", "web3": "8083"} {
		on := web.On(host)
		if got := on.Args[1].Value; got != ":"+port {
			t.Errorf("%s: -listen %q, want :%s", host, got, port)
		}
		if !strings.Contains(on.Files[0].Content.Value, "host: "+host+"\n") || !strings.Contains(on.Files[0].Content.Value, "greeting: hello from production\n") {
			t.Errorf("%s: file:\n%s", host, on.Files[0].Content.Value)
		}
		if on.Health.HTTP != "http://localhost:"+port+"/healthz" {
			t.Errorf("%s: health %s", host, on.Health.HTTP)
		}
		if on.DisplayName != "Fleet Web" || on.Name != "web" || !slices.Equal(on.Hosts, web.Hosts) || on.Rollout != web.Rollout {
			t.Errorf("%s: shared values differ: %+v", host, on)
		}
	}
	if web.On("web1") == web.On("web2") {
		t.Error("web1 and web2 share one evaluation")
	}
}

// TestForEach: one service per element, named BLOCK-KEY, with each.key
// and each.value.
func TestForEach(t *testing.T) {
	cfg := loadFleet(t, "production")
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"web", "worker-billing", "worker-orders"}) {
		t.Fatalf("services %v", names)
	}
	w := cfg.Service("worker-orders")
	if w.Block != "worker" || w.Key != "orders" || w.Env["QUEUE"].Value != "orders" || w.Args[1].Value != ":9101" || w.DisplayName != "Fleet worker (orders)" {
		t.Errorf("worker-orders: %+v", w)
	}
	if !slices.Equal(w.Hosts, []string{"web1"}) || w.PerHost != nil {
		t.Errorf("worker-orders hosts %v, per host %v", w.Hosts, w.PerHost)
	}
}

// TestEnvironments: -env chooses the hosts and the variable file; hosts
// of the other environment are left out, services included.
func TestEnvironments(t *testing.T) {
	cfg := loadFleet(t, "staging")
	if len(cfg.Hosts) != 1 || cfg.Hosts[0].Name != "stage1" || cfg.Environment != "staging" {
		t.Fatalf("staging hosts: %v", hostNames(cfg))
	}
	if !slices.Equal(cfg.Environments, []string{"production", "staging"}) {
		t.Errorf("environments %v", cfg.Environments)
	}
	web := cfg.Service("web")
	if !slices.Equal(web.Hosts, []string{"stage1"}) || !strings.Contains(web.On("stage1").Files[0].Content.Value, "greeting: hello from staging\n") {
		t.Errorf("web in staging: %v\n%s", web.Hosts, web.On("stage1").Files[0].Content.Value)
	}
	// GSD_ENV chooses when -env does not.
	cfg, diags := Load(Options{Paths: []string{"../examples/fleet.hcl"}, Environ: []string{"GSD_VAR_winrm_password=x", "GSD_ENV=production"}})
	if diags.HasErrors() || cfg.Environment != "production" || len(cfg.Hosts) != 3 {
		t.Errorf("GSD_ENV=production: %v %v", diags, hostNames(cfg))
	}
	_, diags = Load(Options{Paths: []string{"../examples/fleet.hcl"}, Environment: "prodution", Environ: []string{"GSD_VAR_winrm_password=x"}})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `Did you mean "production"?`) {
		t.Errorf("unknown environment: %v", diags)
	}
}

// TestPerHostSensitive: a sensitive host var stays sensitive in what a
// service builds from it, on that host only.
func TestPerHostSensitive(t *testing.T) {
	src := `
variable "pw" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
host "a" {
  address = "a.example.internal"
  vars    = { token = var.pw }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
host "b" {
  address = "b.example.internal"
  vars    = { token = "public" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
service "api" {
  hosts  = ["a", "b"]
  binary = "api.exe"
  env    = { TOKEN = each.host.vars.token }
}
`
	cfg, diags := Load(Options{Sources: map[string][]byte{"main.hcl": []byte(src), "api.exe": nil}, Dir: t.TempDir()})
	for _, d := range diags {
		if d.Summary != "Binary not found" {
			t.Fatal(diags.Error())
		}
	}
	api := cfg.Service("api")
	if a := api.On("a").Env["TOKEN"]; !a.Sensitive || a.Value != "s3cret" || a.String() != "(sensitive)" {
		t.Errorf("on a: %#v", a)
	}
	if b := api.On("b").Env["TOKEN"]; b.Sensitive || b.Value != "public" {
		t.Errorf("on b: %#v", b)
	}
}

// TestTemplatesSeeEachHost: a template reads each.host without being
// given it, so a service whose only per-host value is in its template is
// still evaluated per host, and a key one host lacks names that host.
func TestTemplatesSeeEachHost(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hosts := ""
	for _, h := range []string{"a", "b", "c"} {
		vars := `{ port = 80 }`
		if h == "c" {
			vars = `{}`
		}
		hosts += fmt.Sprintf("host %q {\n  address = \"%s.example.internal\"\n  vars = %s\n  winrm {\n    user = \"u\"\n    password = var.pw\n  }\n}\n", h, h, vars)
	}
	write("site.tpl", "name: ${each.host.name}\nport: ${each.host.vars.port}\n")
	write("main.hcl", `variable "pw" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
build "api" {
  package = "./cmd/api"
}
service "api" {
  hosts  = ["a", "b"]
  binary = build.api
  file "site.yaml" {
    content = templatefile("site.tpl", {})
  }
}
`+hosts)
	cfg, diags := Load(Options{Paths: []string{dir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	api := cfg.Service("api")
	if got := api.On("b").Files[0].Content.Value; got != "name: b\nport: 80\n" {
		t.Errorf("on b: %q", got)
	}
	if api.On("a").Files[0].Content.Value == api.On("b").Files[0].Content.Value {
		t.Error("a and b render one file")
	}

	// Host c has no port.
	write("main.hcl", strings.Replace(readFile(t, filepath.Join(dir, "main.hcl")), `hosts  = ["a", "b"]`, `hosts  = ["a", "b", "c"]`, 1))
	_, diags = Load(Options{Paths: []string{dir}})
	if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 13 || !strings.Contains(diags[0].Detail, `host "c"`) {
		t.Errorf("want one error at the templatefile call naming host c, got %v", diags)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPerHostDiagnostics: a problem found on some hosts is reported once
// and names them; one found on every host is reported once, as it would
// be without per-host values.
func TestPerHostDiagnostics(t *testing.T) {
	load := func(modes ...string) hcl.Diagnostics {
		t.Helper()
		src := `build "api" {
  package = "./cmd/api"
}
service "api" {
  hosts  = ["a", "b", "c"]
  binary = build.api
  mode   = each.host.vars.mode
}
`
		for i, m := range modes {
			src += fmt.Sprintf("host %q {\n  address = \"h%d.example.internal\"\n  vars = { mode = %q }\n  ssh {\n    user = \"u\"\n  }\n}\n", string(rune('a'+i)), i, m)
		}
		_, diags := Load(Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir()})
		return diags
	}
	diags := load("native", "bogus", "bogus")
	if len(diags) != 1 || diags[0].Summary != "Invalid mode" || !strings.HasSuffix(diags[0].Detail, `(On hosts "b", "c".)`) {
		t.Errorf("two of three hosts: %v", diags)
	}
	diags = load("bogus", "bogus", "bogus")
	if len(diags) != 1 || strings.Contains(diags[0].Detail, "(On ") {
		t.Errorf("every host: %v", diags)
	}
}
