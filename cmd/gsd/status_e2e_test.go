package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/views"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// helloWithEnv is examples/sandbox/hello.hcl with its build pointed at
// examples/ and an environment: a plain value and a secret.
func helloWithEnv(t *testing.T, repo, greeting string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, "examples", "sandbox", "hello.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclwrite.ParseConfig(src, "hello.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, b := range f.Body().Blocks() {
		switch {
		case b.Type() == "build":
			b.Body().SetAttributeValue("dir", cty.StringVal(filepath.Join(repo, "examples")))
		case b.Type() == "service" && b.Labels()[0] == "hello":
			b.Body().SetAttributeRaw("env", hclwrite.TokensForObject([]hclwrite.ObjectAttrTokens{
				{Name: hclwrite.TokensForIdentifier("GREETING"), Value: hclwrite.TokensForValue(cty.StringVal(greeting))},
				{Name: hclwrite.TokensForIdentifier("TOKEN"), Value: hclwrite.TokensForTraversal(hcl.Traversal{hcl.TraverseRoot{Name: "var"}, hcl.TraverseAttr{Name: "sandbox_password"}})},
			}))
		}
	}
	return f.Bytes()
}

// TestStatusEndToEnd applies the examples' hello service to a sandbox
// host, then checks gsd status: running, healthy, no drift; and after an
// environment value changes in the configuration, drift on that attribute
// alone, named without its value.
func TestStatusEndToEnd(t *testing.T) {
	if os.Getenv("GSD_E2E") != "1" {
		t.Skip("set GSD_E2E=1 (make test-e2e) to run against a sandbox host")
	}
	e, repo := startE2E(t)
	write := func(greeting string) {
		if err := os.WriteFile(filepath.Join(e.dir, "hello.hcl"), helloWithEnv(t, repo, greeting), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// status -json on stdout alone: build progress goes to stderr.
	status := func() *views.ServiceStatus {
		t.Helper()
		cmd := exec.Command(e.gsd, "status", "-json")
		cmd.Dir, cmd.Env = e.dir, e.env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gsd status -json: %v\n%s%s", err, out.String(), errb.String())
		}
		if strings.Contains(out.String()+errb.String(), e.secret) {
			t.Fatalf("gsd status -json printed the sandbox password")
		}
		var st views.Status
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatalf("gsd status -json: %v\n%s", err, out.String())
		}
		if st.FormatVersion != views.StatusFormatVersion || len(st.Hosts) != 1 || st.Hosts[0].Error != "" || len(st.Hosts[0].Services) != 1 {
			t.Fatalf("gsd status -json:\n%s", out.String())
		}
		return st.Hosts[0].Services[0]
	}

	write("hi")
	e.run(0, "apply", "-auto-approve")
	s := status()
	if s.Service != "hello" || !s.Deployed || s.State != "running" || s.Health == nil || s.Health.Status != views.Healthy ||
		s.Drift != nil || s.Release == nil || s.Release.Version != "1.0.0" || s.Since.IsZero() || s.Restarts != nil {
		t.Errorf("after apply: %+v (health %+v, drift %+v)", s, s.Health, s.Drift)
	}
	out := e.run(0, "status")
	if !strings.Contains(out, "hello") || !strings.Contains(out, "running") || !strings.Contains(out, "healthy") {
		t.Errorf("gsd status:\n%s", out)
	}

	// Values are not shown, secret or not: only the attribute's name.
	write("greeting-v2")
	s = status()
	if s.Drift == nil || !slices.Equal(s.Drift.Attributes, []string{"env.GREETING"}) || s.State != "running" {
		t.Errorf("after changing env.GREETING: %+v (drift %+v)", s, s.Drift)
	}
	out = e.run(0, "status")
	if !strings.Contains(out, "env.GREETING") || strings.Contains(out, "greeting-v2") {
		t.Errorf("gsd status with drift:\n%s", out)
	}

	// hello is a native service: its log is its entries in the event
	// log, which Wine keeps none of (reading them is tested against an
	// event log that answers as Windows documents: TestLogsOfNativeService).
	if out = e.run(0, "logs", "hello"); strings.Contains(out, "Error") {
		t.Errorf("gsd logs hello:\n%s", out)
	}
}
