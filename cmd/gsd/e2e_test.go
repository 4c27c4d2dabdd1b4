package main

import (
	"bytes"
	"fmt"
	"github.com/gsd-deploy/gsd/sandbox"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

// The end-to-end test drives the real gsd binary against a sandbox host
// (a WS-Management server running commands under Wine in its own network
// namespace), as a user would. It runs when GSD_E2E=1 (make test-e2e).

type e2e struct {
	t      *testing.T
	gsd    string
	dir    string
	env    []string
	secret string
	// agent is the gsd-agent.exe gsd installs.
	agent string
}

func (e *e2e) run(wantCode int, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(e.gsd, args...)
	cmd.Dir = e.dir
	cmd.Env = e.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("gsd %v: %v", args, err)
	}
	if code != wantCode {
		e.t.Fatalf("gsd %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out.String())
	}
	if e.secret != "" && strings.Contains(out.String(), e.secret) {
		e.t.Fatalf("gsd %s printed the sandbox password", strings.Join(args, " "))
	}
	return out.String()
}

func goBuild(t *testing.T, out string, env []string, pkg string) {
	t.Helper()
	if err := goBuildErr(out, env, pkg); err != nil {
		t.Fatal(err)
	}
}

func goBuildErr(out string, env []string, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// runGsd runs the gsd binary in dir with extra environment.
func runGsd(gsd, dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command(gsd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startE2E builds gsd and the agent, starts one sandbox host (removed
// when the test ends) with the options of upArgs, and returns the runner
// and the repository's root.
func startE2E(t *testing.T, upArgs ...string) (*e2e, string) {
	t.Helper()
	sandboxtest.RequireWine(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "gsd"), nil, ".")
	goBuild(t, filepath.Join(bin, "gsd-agent.exe"), []string{"GOOS=windows", "GOARCH=amd64"}, "../gsd-agent")
	e := &e2e{t: t, gsd: filepath.Join(bin, "gsd"), dir: t.TempDir(), agent: filepath.Join(bin, "gsd-agent.exe")}
	e.env = append(os.Environ(), "GSD_AGENT_EXE="+e.agent, "GSD_CACHE_DIR="+filepath.Join(bin, "cache"), "NO_COLOR=1")
	e.run(0, append([]string{"sandbox", "up", "-n", "1"}, upArgs...)...)
	t.Cleanup(func() { e.run(0, "sandbox", "down") })
	vars, err := os.ReadFile(filepath.Join(e.dir, "sandbox.auto.gsdvars"))
	if err != nil {
		t.Fatal(err)
	}
	e.secret = strings.Trim(strings.TrimSpace(strings.SplitN(string(vars), "=", 2)[1]), `"`)
	return e, repo
}

func TestEndToEnd(t *testing.T) {
	if os.Getenv("GSD_E2E") != "1" {
		t.Skip("set GSD_E2E=1 (make test-e2e) to run against a sandbox host")
	}
	e, repo := startE2E(t)

	write := func(version, greeting, config string) {
		src := `
build "hello" {
  package = "./examples/services/hello"
  dir     = "` + repo + `"
}
service "hello" {
  hosts   = { sandbox = "true" }
  binary  = build.hello
  version = "` + version + `"
  args    = ["-service", "-listen", "127.0.0.1:8080"]
  env     = { GREETING = "` + greeting + `", TOKEN = var.sandbox_password }
  file "config.yaml" {
    content   = "` + config + `"
    on_change = "reload"
  }
}
`
		if err := os.WriteFile(filepath.Join(e.dir, "hello.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("1.0.0", "hi", "a: 1")
	out := e.run(2, "plan", "-detailed-exitcode", "-out", "first.plan")
	for _, want := range []string{"+ service.hello  create, release 1.0.0, then start", "env.TOKEN         (sensitive value)", "+ eventlog.hello  create", "Plan: 2 to add, 0 to change, 0 to destroy."} {
		if !strings.Contains(out, want) {
			t.Errorf("first plan lacks %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "first.plan")); bytes.Contains(b, []byte(e.secret)) {
		t.Fatalf("the plan file holds the password")
	}
	out = e.run(0, "apply", "first.plan")
	if !strings.Contains(out, "service.hello: create complete") || !strings.Contains(out, "uploading") {
		t.Fatalf("apply:\n%s", out)
	}

	// Applied and unchanged: nothing to do, nothing sent, nothing
	// restarted.
	out = e.run(0, "plan", "-detailed-exitcode")
	if !strings.Contains(out, "No changes.") {
		t.Errorf("second plan:\n%s", out)
	}
	out = e.run(0, "apply", "-auto-approve")
	if strings.Contains(out, "uploading") || strings.Contains(out, "stopping hello") || !strings.Contains(out, "No changes.") {
		t.Errorf("second apply did work:\n%s", out)
	}

	// A reloadable file: only that change, and a reload, not a restart.
	write("1.0.0", "hi", "a: 2")
	out = e.run(0, "apply", "-auto-approve")
	if !strings.Contains(out, "~ file.config.yaml") || !strings.Contains(out, "reloading hello") || strings.Contains(out, "stopping hello") || strings.Contains(out, "env.") {
		t.Errorf("file change:\n%s", out)
	}
	// An environment change restarts, and says why.
	write("1.0.0", "yo", "a: 2")
	out = e.run(0, "apply", "-auto-approve")
	if !strings.Contains(out, "restart (environment changed)") || !strings.Contains(out, "stopping hello") || !strings.Contains(out, "starting hello") {
		t.Errorf("env change:\n%s", out)
	}

	// A saved plan that no longer matches the configuration is refused.
	write("1.0.1", "yo", "a: 2")
	e.run(2, "plan", "-detailed-exitcode", "-out", "stale.plan")
	write("1.0.2", "yo", "a: 2")
	if out = e.run(1, "apply", "stale.plan"); !strings.Contains(out, "the saved plan is stale") {
		t.Errorf("stale plan:\n%s", out)
	}
	// Nor is what would choose another plan than the one saved.
	if out = e.run(1, "apply", "-target", "service.hello", "stale.plan"); !strings.Contains(out, "a saved plan is applied as it was made") {
		t.Errorf("saved plan with -target:\n%s", out)
	}

	// Without a terminal, apply refuses to ask.
	if out = e.run(1, "apply"); !strings.Contains(out, "no terminal to confirm on") {
		t.Errorf("apply without a terminal:\n%s", out)
	}

	// No log the hosts wrote holds the password: not the WS-Management
	// server's, not the agent's, not the services'.
	logs := 0
	filepath.WalkDir(filepath.Join(e.dir, ".gsd-sandbox"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".log") {
			return nil
		}
		logs++
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(e.secret)) {
			t.Errorf("%s holds the password", path)
		}
		return nil
	})
	if logs == 0 {
		t.Errorf("no log files found to check")
	}

	// Nothing the agent keeps on the host holds it either: not state,
	// not a release, not the sealed store, which must exist and open.
	st, err := sandbox.LoadState(filepath.Join(e.dir, sandbox.DefaultDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		prefix := h.Prefix
		if !filepath.IsAbs(prefix) {
			prefix = filepath.Join(e.dir, prefix)
		}
		root := filepath.Join(prefix, "drive_c", "ProgramData", "gsd")
		sealed := 0
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if d.Name() == "secrets.sealed" {
				sealed++
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(e.secret)) {
				t.Errorf("%s holds the password", path)
			}
			return nil
		})
		if sealed == 0 {
			t.Errorf("%s: no sealed release secrets found under %s, though the releases have a sensitive value", h.Name, root)
		}
	}

	// destroy removes what gsd manages, and the host is clean after it.
	out = e.run(0, "destroy", "-auto-approve")
	if !strings.Contains(out, "- service.hello  delete") || !strings.Contains(out, "service.hello: delete complete") {
		t.Errorf("destroy:\n%s", out)
	}
	// hosts check says how it got in: the default way, as into a stock
	// Windows Server.
	out = e.run(0, "hosts", "check")
	if strings.Contains(out, "other managed resources") {
		t.Errorf("hosts check after destroy still names other managed resources:\n%s", out)
	}
	for _, want := range []string{"0 managed services", "listener    http://", ":5985/wsman", "auth        NTLM as gsd",
		"encryption  every message sealed with the NTLM session key", "tls         not used (plain HTTP)", "agent       this build was already on the host"} {
		if !strings.Contains(out, want) {
			t.Errorf("hosts check after destroy lacks %q:\n%s", want, out)
		}
	}
}
