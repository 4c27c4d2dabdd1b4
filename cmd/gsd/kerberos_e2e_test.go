package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/gsd-deploy/gsd/sandbox"
	"github.com/gsd-deploy/gsd/sandbox/kdc"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

// TestKerberosEndToEnd: a sandbox host in a Kerberos realm (MIT's KDC),
// the demo planned and applied over Kerberos two ways: plain HTTP with
// every message sealed, logged in from the ticket cache of MIT's kinit,
// as at a laptop; and HTTPS, bound to the channel, from the user's keytab
// with no ticket cache at all, as in CI.
func TestKerberosEndToEnd(t *testing.T) {
	if os.Getenv("GSD_E2E") != "1" {
		t.Skip("set GSD_E2E=1 (make test-e2e) to run against a sandbox host")
	}
	if err := kdc.Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	e, repo := startE2E(t, "-kerberos", "-https")
	st, err := sandbox.LoadState(filepath.Join(e.dir, sandbox.DefaultDir))
	if err != nil {
		t.Fatal(err)
	}
	k := st.Kerberos
	if k == nil || k.ClientKeytab == "" {
		t.Fatalf("sandbox up -kerberos left no realm: %+v", st)
	}
	demo := filepath.Join(repo, "examples", "sandbox", "hello.hcl")
	written, err := os.ReadFile(filepath.Join(e.dir, sandbox.HCLFile))
	if err != nil {
		t.Fatal(err)
	}
	// sandboxAs writes sandbox.hcl's winrm block as edit leaves it.
	sandboxAs := func(edit func(w *hclwrite.Body)) {
		f, diags := hclwrite.ParseConfig(written, sandbox.HCLFile, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		for _, b := range f.Body().Blocks() {
			for _, w := range b.Body().Blocks() {
				if b.Type() == "host" && w.Type() == "winrm" {
					edit(w.Body())
				}
			}
		}
		if err := os.WriteFile(filepath.Join(e.dir, sandbox.HCLFile), f.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(out string, wants ...string) {
		t.Helper()
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	}

	// A laptop: MIT kinit with the password, then gsd over HTTP with the
	// sandbox.hcl as written but for its HTTPS listener.
	ccache := filepath.Join(t.TempDir(), "krb5cc")
	kinit := exec.Command("kinit", "-c", "FILE:"+ccache, k.Principal)
	kinit.Env = append(os.Environ(), "KRB5_CONFIG="+k.Config)
	kinit.Stdin = strings.NewReader(e.secret + "\n")
	if out, err := kinit.CombinedOutput(); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	e.env = append(e.env, "KRB5CCNAME=FILE:"+ccache)
	sandboxAs(func(w *hclwrite.Body) {
		w.RemoveAttribute("https")
		w.RemoveAttribute("ca_cert")
	})
	out := e.run(0, "apply", "-auto-approve", ".", demo)
	expect(out, "service.hello: create complete", "uploading")
	out = e.run(0, "hosts", "check", ".", demo)
	expect(out, ":5985/wsman", "auth        Kerberos as "+k.Principal+" (ticket cache) for HTTP/sandbox1."+sandbox.Domain,
		"encryption  every message sealed with the Kerberos session key")

	// CI: no ticket cache, the keytab sandbox up exported, HTTPS.
	e.env = append(e.env, "KRB5CCNAME=FILE:"+filepath.Join(t.TempDir(), "none"))
	sandboxAs(func(w *hclwrite.Body) {
		w.SetAttributeValue("user", cty.StringVal(k.Principal))
		w.SetAttributeValue("keytab", cty.StringVal(k.ClientKeytab))
	})
	e.run(0, "validate", ".", demo)
	out = e.run(2, "plan", "-detailed-exitcode", "-var", "version=1.0.1", ".", demo)
	expect(out, "1.0.1")
	out = e.run(0, "apply", "-auto-approve", "-var", "version=1.0.1", ".", demo)
	expect(out, "service.hello: replace complete", "1.0.0 → 1.0.1")
	out = e.run(0, "hosts", "check", ".", demo)
	expect(out, ":5986/wsman", "auth        Kerberos as "+k.Principal+" (keytab "+k.ClientKeytab+")",
		"Kerberos bound to it by a channel binding")
	out = e.run(0, "plan", "-detailed-exitcode", "-var", "version=1.0.1", ".", demo)
	expect(out, "No changes.")
}
