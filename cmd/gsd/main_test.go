package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

type result struct {
	code           int
	stdout, stderr string
}

func gsd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(string) string { return "" },
	}
	code := run(env, args)
	return result{code, out.String(), errb.String()}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s (run go test ./cmd/gsd -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s", path, got)
	}
}

func TestInitThenValidateInEmptyDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if r := gsd(t, "", "init"); r.code != 0 || !strings.Contains(r.stdout, "Wrote gsd.hcl") {
		t.Fatalf("init: %+v", r)
	}
	if r := gsd(t, "", "init"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second init must refuse to overwrite: %+v", r)
	}
	if r := gsd(t, "", "validate"); r.code != 0 || r.stdout != "The configuration is valid.\n" {
		t.Errorf("validate after init: %+v", r)
	}
	if r := gsd(t, "", "fmt", "-check"); r.code != 0 || r.stdout != "" {
		t.Errorf("the starter should already be formatted: %+v", r)
	}
}

func TestValidateHumanOutput(t *testing.T) {
	r := gsd(t, "", "validate", "../../testdata/validate/several.hcl")
	if r.code != 1 {
		t.Fatalf("exit code %d, want 1", r.code)
	}
	golden(t, "validate.txt", r.stderr)
	if strings.Contains(r.stderr, "hunter2") {
		t.Errorf("the literal password was quoted back")
	}
	for _, want := range []string{
		"../../testdata/validate/several.hcl:15:27", // file:line:col of the unknown host
		`  15:   hosts        = ["web1", "web3"]`,   // the source line
		"The configuration is invalid: 4 errors, 1 warning.",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestValidateJSON(t *testing.T) {
	r := gsd(t, "", "validate", "-json", "../../testdata/validate/several.hcl")
	if r.code != 1 {
		t.Fatalf("exit code %d, want 1", r.code)
	}
	golden(t, "validate.json", r.stdout)
	var v struct {
		Valid       bool `json:"valid"`
		ErrorCount  int  `json:"error_count"`
		Diagnostics []struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Range    *struct {
				Filename string `json:"filename"`
				Start    struct{ Line, Column int }
			} `json:"range"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.ErrorCount != 4 || len(v.Diagnostics) != 5 {
		t.Errorf("json summary: valid=%v errors=%d diagnostics=%d", v.Valid, v.ErrorCount, len(v.Diagnostics))
	}
	for _, d := range v.Diagnostics {
		if d.Range == nil || d.Range.Start.Line == 0 || d.Range.Start.Column == 0 {
			t.Errorf("%s has no line and column", d.Summary)
		}
	}
	if r := gsd(t, "", "validate", "-json", "../../examples/web.hcl"); r.code != 0 || !strings.Contains(r.stdout, `"valid": true`) {
		t.Errorf("valid example: %+v", r)
	}
}

// A secret given in a variable file must not be echoed, even when the
// value is wrong and reported.
func TestValidateDoesNotEchoSecrets(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "-var-file", "../../testdata/validate/secret.gsdvars", "../../testdata/validate/several.hcl"},
		{"validate", "-json", "-var-file", "../../testdata/validate/secret.gsdvars", "../../testdata/validate/several.hcl"},
	} {
		r := gsd(t, "", args...)
		if r.code != 1 {
			t.Errorf("%v: exit %d", args, r.code)
		}
		if strings.Contains(r.stdout+r.stderr, "12345678901234567890") {
			t.Errorf("%v printed the secret:\n%s%s", args, r.stdout, r.stderr)
		}
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../testdata/fmt/messy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../testdata/fmt/messy.hcl.golden")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "main.hcl")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}

	r := gsd(t, "", "fmt", "-check", "-diff", dir)
	if r.code != 1 || !strings.Contains(r.stdout, path) || !strings.Contains(r.stdout, "+  hosts  = [\"web1\"]") {
		t.Errorf("fmt -check -diff: %+v", r)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, src) {
		t.Errorf("fmt -check changed the file")
	}

	if r := gsd(t, "", "fmt", dir); r.code != 0 || r.stdout != path+"\n" {
		t.Errorf("fmt: %+v", r)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, want) {
		t.Errorf("fmt wrote:\n%s", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("fmt changed the file mode to %v", st.Mode().Perm())
	}
	if r := gsd(t, "", "fmt", "-check", dir); r.code != 0 || r.stdout != "" {
		t.Errorf("fmt -check after fmt: %+v", r)
	}
	if r := gsd(t, string(src), "fmt", "-"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("fmt - from stdin: %+v", r)
	}
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("service {\n"), 0o644)
	if r := gsd(t, "", "fmt", bad); r.code != 1 || !strings.Contains(r.stderr, "bad.hcl:") {
		t.Errorf("fmt of a broken file: %+v", r)
	}
}

func TestCommandErrors(t *testing.T) {
	if r := gsd(t, "", "deploy"); r.code != 1 || !strings.Contains(r.stderr, `unknown command "deploy"`) {
		t.Errorf("unknown command: %+v", r)
	}
	if r := gsd(t, "", "validate", "-bogus"); r.code != 1 {
		t.Errorf("unknown flag: %+v", r)
	}
	if r := gsd(t, "", "validate", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-var-file") {
		t.Errorf("help: %+v", r)
	}
	if r := gsd(t, "", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "gsd ") {
		t.Errorf("version: %+v", r)
	}
	if r := gsd(t, ""); r.code != 0 || !strings.Contains(r.stdout, "validate") {
		t.Errorf("usage: %+v", r)
	}
	if r := gsd(t, "", "validate", "no-such-dir"); r.code != 1 || !strings.Contains(r.stderr, "no-such-dir") {
		t.Errorf("missing path: %+v", r)
	}
}

// fmt formats the file a symbolic link points at and leaves the link a
// link, so a shared file linked into several configurations stays shared.
func TestFmtFollowsSymlinks(t *testing.T) {
	shared, dir := t.TempDir(), t.TempDir()
	src, _ := os.ReadFile("../../testdata/fmt/messy.hcl")
	want, _ := os.ReadFile("../../testdata/fmt/messy.hcl.golden")
	target := filepath.Join(shared, "common.hcl")
	os.WriteFile(target, src, 0o644)
	link := filepath.Join(dir, "common.hcl")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if r := gsd(t, "", "fmt", dir); r.code != 0 {
		t.Fatalf("fmt: %+v", r)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, want) {
		t.Errorf("the link's target was not formatted")
	}
}

func gsdEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	code := run(e, args)
	return result{code, out.String(), errb.String()}
}

// A build that does not compile stops plan with the compiler's own words,
// before any host is contacted.
func TestPlanShowsBuildFailure(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/broken\n\ngo 1.22\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "cmd", "svc"), 0o755)
	os.WriteFile(filepath.Join(dir, "cmd", "svc", "main.go"), []byte("package main\n\nfunc main() {\n\tnotDefined()\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "gsd.hcl"), []byte(`
host "web1" {
  address = "127.0.0.1"
  winrm {
    port     = 1
    user     = "deploy"
    password = "x"
  }
}
build "svc" {
  package = "./cmd/svc"
}
service "svc" {
  hosts  = ["web1"]
  binary = build.svc
}
`), 0o644)
	t.Setenv("GSD_CACHE_DIR", t.TempDir())
	r := gsdEnv(t, nil, "plan", dir)
	if r.code != 1 || !strings.Contains(r.stderr, `build "svc" failed`) || !strings.Contains(r.stderr, "main.go:4:2: undefined: notDefined") {
		t.Errorf("plan of a broken build: %+v", r)
	}
}

// An unreachable host fails its own plan, with an error that names it,
// and gsd exits 1.
func TestPlanUnreachableHost(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "gsd-agent.exe")
	os.WriteFile(agent, []byte("MZ stand-in: never sent, the host is not reached"), 0o644)
	exe := filepath.Join(dir, "svc.exe")
	os.WriteFile(exe, []byte("MZ"), 0o644)
	os.WriteFile(filepath.Join(dir, "gsd.hcl"), []byte(`
host "gone" {
  address = "127.0.0.1"
  winrm {
    https             = false
    allow_unencrypted = true
    port              = 1
    user              = "deploy"
    password          = "x"
    timeout           = "5s"
  }
}
service "svc" {
  hosts  = ["gone"]
  binary = "svc.exe"
}
`), 0o644)
	r := gsdEnv(t, map[string]string{"GSD_AGENT_EXE": agent}, "plan", "-no-color", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "host.gone (127.0.0.1, winrm)") || !strings.Contains(r.stdout, "error:") ||
		!strings.Contains(r.stdout, "1 host could not be planned") {
		t.Errorf("plan with an unreachable host: %+v", r)
	}
}

func TestTargetTypoIsAnError(t *testing.T) {
	for _, cmd := range []string{"plan", "apply"} {
		r := gsdEnv(t, nil, cmd, "-target", "service.nope", "-var", "winrm_password=x", "../../examples/web.hcl")
		if r.code != 1 || !strings.Contains(r.stderr, "-target service.nope: no such service") {
			t.Errorf("%s: %+v", cmd, r)
		}
	}
}
