package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/sandbox"
)

// On a sandbox host: a C:\ProgramData\gsd that another user made first,
// with an agent binary planted in it, is moved aside and never run; an
// agent binary whose bytes were changed after gsd installed it is
// installed again before it runs; the plan says both. A service runs as
// its virtual account unless told otherwise, and the plan shows the
// privilege of each account.
func TestHostSecurityEndToEnd(t *testing.T) {
	if os.Getenv("GSD_E2E") != "1" {
		t.Skip("set GSD_E2E=1 (make test-e2e) to run against a sandbox host")
	}
	if os.Geteuid() != 0 {
		t.Skip("planting a folder owned by another user needs root")
	}
	e, repo := startE2E(t)
	st, err := sandbox.LoadState(filepath.Join(e.dir, sandbox.DefaultDir))
	if err != nil {
		t.Fatal(err)
	}
	prefix := st.Hosts[0].Prefix
	if !filepath.IsAbs(prefix) {
		prefix = filepath.Join(e.dir, prefix)
	}
	b, err := os.ReadFile(e.agent)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	root := filepath.Join(prefix, "drive_c", "ProgramData", "gsd")
	agentPath := filepath.Join(root, "bin", hex.EncodeToString(sum[:]), "gsd-agent.exe")
	winAgentPath := `C:\ProgramData\gsd\bin\` + hex.EncodeToString(sum[:]) + `\gsd-agent.exe`

	// Another user's root, with a binary under the agent's name that
	// would leave a mark if it ran.
	if err := os.MkdirAll(filepath.Dir(agentPath), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agentPath, []byte("@echo planted> C:\\planted.txt\r\n"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	src := `
build "hello" {
  package = "./examples/services/hello"
  dir     = "` + repo + `"
}
service "hello" {
  hosts  = { sandbox = "true" }
  binary = build.hello
  args   = ["-service", "-listen", "127.0.0.1:8080"]
}
`
	if err := os.WriteFile(filepath.Join(e.dir, "hello.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.run(0, "apply", "-auto-approve")
	for _, want := range []string{`! repaired: moved C:\ProgramData\gsd aside`, "could have put anything in it",
		`+ account       "NT SERVICE\\hello" (virtual account, least privilege)`, "service.hello: create complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(prefix, "drive_c", "planted.txt")); err == nil {
		t.Fatal("the planted binary ran")
	}

	// The installed agent's bytes changed on the host: installed again
	// before it runs.
	if err := os.WriteFile(agentPath, append(b[:len(b):len(b)], "tampered"...), 0o755); err != nil {
		t.Fatal(err)
	}
	out = e.run(0, "plan")
	if !strings.Contains(out, "! repaired: "+winAgentPath+" had SHA-256 ") || !strings.Contains(out, "gsd installed its own build there again") || !strings.Contains(out, "No changes.") {
		t.Errorf("plan after the agent changed:\n%s", out)
	}
	if got, _ := os.ReadFile(agentPath); string(got) != string(b) {
		t.Error("the changed agent binary was not replaced")
	}

	// LocalSystem stays available, and the plan says what it is.
	src = strings.Replace(src, "binary = build.hello", "binary = build.hello\n  account {\n    name = \"LocalSystem\"\n  }", 1)
	if err := os.WriteFile(filepath.Join(e.dir, "hello.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out = e.run(0, "apply", "-auto-approve")
	if !strings.Contains(out, `~ account  "NT SERVICE\\hello" → "LocalSystem" (highest privilege)`) || !strings.Contains(out, "restart (account changed)") {
		t.Errorf("account change:\n%s", out)
	}
	e.run(0, "destroy", "-auto-approve")
}
