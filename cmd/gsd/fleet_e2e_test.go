package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/config"
)

// TestFleetEndToEnd applies examples/fleet.hcl in its production
// environment to three sandbox hosts: each host answers with its own
// port and its own config file, the for_each workers answer on theirs,
// a change to one host's vars plans, applies (from a saved plan) and
// restarts on that host only, gsd releases and gsd rollback work on the
// per-host releases, and the staging environment plans its own host.
func TestFleetEndToEnd(t *testing.T) {
	l := startRolloutLab(t, 3)
	sb, diags := config.Load(config.Options{Paths: []string{l.sbDir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	examples, _ := filepath.Abs("../../examples")
	src, err := os.ReadFile(filepath.Join(examples, "fleet.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "fleet.hcl"), pointAtSandbox(t, []byte(src), "fleet.hcl", sb.Hosts, examples), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(string(src))
	if err := os.CopyFS(filepath.Join(dir, "templates"), os.DirFS(filepath.Join(examples, "templates"))); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"production", "staging"} {
		b, err := os.ReadFile(filepath.Join(examples, env+config.VarsExt))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, env+config.VarsExt), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pw := []string{"-var", "winrm_password=" + l.secret}
	prod := append([]string{"-env", "production"}, pw...)
	gsd := func(code int, args ...string) string {
		t.Helper()
		return l.gsdRun(t, dir, code, append(args, prod...)...)
	}
	t.Cleanup(func() { l.gsdCode(t, dir, append([]string{"destroy", "-auto-approve"}, prod...)...) })
	answer := func(i, port int) string {
		t.Helper()
		code, body, err := l.get(i, port, "/config")
		if err != nil || code != 200 {
			t.Fatalf("%s: GET :%d/config: %d %v", l.hosts[i].Name, port, code, err)
		}
		return body
	}

	out := gsd(0, "apply", "-auto-approve")
	if !strings.Contains(out, "Environment: production") || strings.Contains(out, "stage1") {
		t.Fatalf("apply:\n%s", out)
	}
	datacenters := []string{"ams", "fra", "lon"}
	for i := range 3 {
		got := answer(i, 8081+i)
		for _, want := range []string{fmt.Sprintf("host: web%d\n", i+1), "datacenter: " + datacenters[i] + "\n", fmt.Sprintf("listen: \":%d\"\n", 8081+i), "greeting: hello from production\n", "environment: production\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("web%d answers without %q:\n%s", i+1, want, got)
			}
		}
	}
	for _, port := range []int{9101, 9102} {
		if code, _, err := l.get(0, port, "/healthz"); err != nil || code != 200 {
			t.Errorf("worker on web1 port %d: %d %v", port, code, err)
		}
	}
	if out = gsd(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after apply:\n%s", out)
	}

	// One host's var: a change and a restart there, nowhere else.
	write(strings.Replace(string(src), `datacenter = "fra"`, `datacenter = "par"`, 1))
	out = gsd(2, "plan", "-detailed-exitcode", "-out", "web2.plan")
	if !strings.Contains(out, "host.web2") || strings.Contains(out, "host.web1") || strings.Contains(out, "host.web3") ||
		!strings.Contains(out, "restart (file site.yaml changed)") || !strings.Contains(out, "Plan: 0 to add, 1 to change, 0 to destroy.") {
		t.Fatalf("plan after changing web2's datacenter:\n%s", out)
	}
	// The saved plan carries its environment.
	out = l.gsdRun(t, dir, 0, append(append([]string{"apply"}, pw...), "web2.plan")...)
	if !strings.Contains(out, "web2") || strings.Contains(out, "web1: ") || strings.Contains(out, "web3: ") {
		t.Errorf("apply web2.plan:\n%s", out)
	}
	if got := answer(1, 8082); !strings.Contains(got, "datacenter: par\n") {
		t.Errorf("web2 after the change:\n%s", got)
	}
	if got := answer(0, 8081); !strings.Contains(got, "datacenter: ams\n") {
		t.Errorf("web1 after web2's change:\n%s", got)
	}

	// Per-host releases: web2 keeps two, and rolls back to its own.
	if out = gsd(0, "releases", "service.web", "-host", "web2", "-json"); strings.Count(out, `"id": "r-`) != 2 {
		t.Errorf("releases of web on web2:\n%s", out)
	}
	gsd(0, "rollback", "service.web", "-host", "web2", "-auto-approve")
	if got := answer(1, 8082); !strings.Contains(got, "datacenter: fra\n") {
		t.Errorf("web2 after rollback:\n%s", got)
	}

	// Staging is its own host and its own values.
	out = l.gsdRun(t, dir, 2, append([]string{"plan", "-detailed-exitcode", "-env", "staging"}, pw...)...)
	if !strings.Contains(out, "Environment: staging") || !strings.Contains(out, "host.stage1") || strings.Contains(out, "host.web") {
		t.Errorf("staging plan:\n%s", out)
	}
}
