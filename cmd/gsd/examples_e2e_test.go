package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// pointAtSandbox rewrites an example's host blocks to reach sandbox hosts
// instead (address, port, CA, user; in order, starting again at the first
// for hosts past the sandbox's, which belong to another environment) and
// its builds to find their sources; services, builds and everything else
// stay as written.
func pointAtSandbox(t *testing.T, src []byte, name string, hosts []*config.Host, examples string) []byte {
	t.Helper()
	f, diags := hclwrite.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	i := 0
	for _, b := range f.Body().Blocks() {
		switch b.Type() {
		case "host":
			sb := hosts[i%len(hosts)]
			i++
			b.Body().SetAttributeValue("address", cty.StringVal(sb.Address))
			for _, w := range b.Body().Blocks() {
				if w.Type() != "winrm" {
					continue
				}
				// The sandbox's way in, the default one (HTTP, NTLM,
				// encrypted messages) unless it has an HTTPS listener.
				w.Body().RemoveAttribute("https")
				w.Body().RemoveAttribute("ca_cert")
				if sb.WinRM.HTTPS {
					w.Body().SetAttributeValue("https", cty.True)
					w.Body().SetAttributeValue("ca_cert", cty.StringVal(sb.WinRM.CACert))
				}
				w.Body().SetAttributeValue("port", cty.NumberIntVal(int64(sb.WinRM.Port)))
				w.Body().SetAttributeValue("user", cty.StringVal(sb.WinRM.User))
			}
		case "build":
			if b.Body().GetAttribute("dir") == nil {
				b.Body().SetAttributeValue("dir", cty.StringVal(examples))
			}
		}
	}
	return f.Bytes()
}

// TestExamplesEndToEnd plans and applies every examples/*.hcl against
// sandbox hosts: apply, nothing left to do, nothing sent or restarted the
// second time, one changed attribute changes only that, destroy leaves
// the hosts clean.
func TestExamplesEndToEnd(t *testing.T) {
	if os.Getenv("GSD_E2E") != "1" {
		t.Skip("set GSD_E2E=1 (make test-e2e) to run against sandbox hosts")
	}
	sandboxtest.RequireWine(t)
	examples, _ := filepath.Abs("../../examples")
	files, _ := filepath.Glob(filepath.Join(examples, "*.hcl"))
	if len(files) < 4 {
		t.Fatalf("examples: %v", files)
	}
	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "gsd"), nil, ".")
	goBuild(t, filepath.Join(bin, "gsd-agent.exe"), []string{"GOOS=windows", "GOARCH=amd64"}, "../gsd-agent")
	sbDir := t.TempDir()
	e := &e2e{t: t, gsd: filepath.Join(bin, "gsd"), dir: sbDir}
	e.env = append(os.Environ(), "GSD_AGENT_EXE="+filepath.Join(bin, "gsd-agent.exe"), "GSD_CACHE_DIR="+filepath.Join(bin, "cache"), "NO_COLOR=1")
	e.run(0, "sandbox", "up", "-n", "3")
	t.Cleanup(func() { e.dir = sbDir; e.run(0, "sandbox", "down") })
	sb, diags := config.Load(config.Options{Paths: []string{sbDir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	password := sb.Hosts[0].WinRM.Password.Value
	e.secret = password

	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			e.t = t
			dir := t.TempDir()
			src, _ := os.ReadFile(path)
			if err := os.WriteFile(filepath.Join(dir, name), pointAtSandbox(t, src, name, sb.Hosts, examples), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(filepath.Join(dir, "templates"), os.DirFS(filepath.Join(examples, "templates"))); err != nil {
				t.Fatal(err)
			}
			varFiles, _ := filepath.Glob(filepath.Join(examples, "*"+config.VarsExt))
			for _, f := range varFiles {
				b, _ := os.ReadFile(f)
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e.dir = dir
			conf := []string{"-var", "winrm_password=" + password}
			// An example with environments runs in its first.
			if shape, _ := config.Load(config.Options{Paths: []string{dir}, AllowUnsetVariables: true}); len(shape.Environments) > 0 {
				conf = append(conf, "-env", shape.Environments[0])
			}
			gsd := func(code int, args ...string) string { return e.run(code, append(args, conf...)...) }

			out := gsd(0, "apply", "-auto-approve")
			if !strings.Contains(out, "create complete") || strings.Contains(out, "failed") {
				t.Fatalf("first apply:\n%s", out)
			}
			out = gsd(0, "plan", "-detailed-exitcode")
			if !strings.Contains(out, "No changes.") {
				t.Fatalf("plan after apply:\n%s", out)
			}
			out = gsd(0, "apply", "-auto-approve")
			if strings.Contains(out, "uploading") || strings.Contains(out, ": stopping ") || !strings.Contains(out, "No changes.") {
				t.Fatalf("second apply did work:\n%s", out)
			}

			// Scheduled tasks are in the Task Scheduler, ready, and show
			// when they last ran (never: Wine's Task Scheduler runs
			// nothing).
			if name == "tasks.hcl" {
				out = gsd(0, "status")
				if !strings.Contains(out, "task.sync ") || !strings.Contains(out, "ready") || !strings.Contains(out, "task.sync: last run: never") {
					t.Fatalf("status:\n%s", out)
				}
			}

			// One attribute changes: only it, in place, no restart.
			attr := "display_name"
			if !strings.Contains(string(src), "display_name = \"") {
				attr = "description" // tasks have no display name
			}
			changed := strings.Replace(string(src), attr+" = \"", attr+" = \"New ", 1)
			os.WriteFile(filepath.Join(dir, name), pointAtSandbox(t, []byte(changed), name, sb.Hosts, examples), 0o644)
			out = gsd(2, "plan", "-detailed-exitcode")
			if !strings.Contains(out, "~ "+attr) || strings.Count(out, "      ~ ") != strings.Count(out, "~ "+attr) || strings.Contains(out, "restart") {
				t.Fatalf("plan after changing %s:\n%s", attr, out)
			}
			gsd(0, "apply", "-auto-approve")
			if out = gsd(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
				t.Fatalf("plan after the change:\n%s", out)
			}

			out = gsd(0, "destroy", "-auto-approve")
			if !strings.Contains(out, "delete complete") {
				t.Fatalf("destroy:\n%s", out)
			}
			if out = gsd(0, "hosts", "check"); strings.Count(out, "0 managed services") != strings.Count(out, "host.") || strings.Contains(out, "other managed resources") {
				t.Fatalf("hosts not clean after destroy:\n%s", out)
			}
		})
	}
}
