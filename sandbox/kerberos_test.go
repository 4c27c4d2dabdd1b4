package sandbox_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/sandbox"
	"github.com/gsd-deploy/gsd/sandbox/kdc"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

// kerberosClient is pywinrm with transport='kerberos' and every message
// sealed, over the pykerberos adapter the winrs conformance tests use: it
// runs a command on a host and prints its output.
const kerberosClient = `
import sys, winrm
endpoint, spn_host, principal = sys.argv[1:4]
p = winrm.protocol.Protocol(endpoint, transport="kerberos", username=principal or None,
    kerberos_hostname_override=spn_host, message_encryption="always")
shell = p.open_shell()
cid = p.run_command(shell, "echo kerberos& exit 5")
out, err, code = p.get_command_output(shell, cid)
p.cleanup_command(shell, cid)
p.close_shell(shell)
sys.stdout.write("%s %d" % (out.decode().strip(), code))
`

// A -kerberos sandbox is a domain: its realm runs on MIT's KDC, the
// user's password gets a ticket with kinit, the exported keytab logs in
// without one, each host accepts its SPN (and refuses NTLM with
// -refuse-ntlm), and Down stops the KDC.
func TestKerberosSandbox(t *testing.T) {
	if err := kdc.Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	sandboxtest.RequirePywinrm(t)
	sandboxtest.RequireWine(t)
	dir := filepath.Join(t.TempDir(), "sandbox")
	st, err := sandbox.Up(sandbox.Options{Dir: dir, Hosts: 1, Kerberos: true, RefuseNTLM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sandbox.Down(dir, nil); err != nil && !errors.Is(err, sandbox.ErrNoSandbox) {
			t.Errorf("sandbox down: %v", err)
		}
	})
	k, h := st.Kerberos, st.Hosts[0]
	if k == nil || k.Realm != sandbox.RealmName || k.Principal != "gsd@"+sandbox.RealmName || h.SPN != "HTTP/sandbox1."+sandbox.Domain || !k.Answers() {
		t.Fatalf("realm %+v, host SPN %q", k, h.SPN)
	}
	hcl := sandbox.RenderHCL(dir, st)
	for _, want := range []string{`auth      = "kerberos"`, `spn       = "HTTP/sandbox1.sandbox.gsd.test"`, `krb5_conf = "kdc/krb5.conf"`,
		`# keytab = "gsd.keytab"`, "KRB5_CONFIG=kdc/krb5.conf kinit gsd@SANDBOX.GSD.TEST"} {
		if !bytes.Contains(hcl, []byte(want)) {
			t.Errorf("sandbox.hcl lacks %s:\n%s", want, hcl)
		}
	}
	if bytes.Contains(hcl, []byte("password =")) {
		t.Errorf("a Kerberos sandbox.hcl logs in with the password:\n%s", hcl)
	}
	adapter, err := filepath.Abs("winrs/testdata/pykerberos")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + h.Address + ":5985/wsman"
	spnHost := strings.TrimPrefix(h.SPN, "HTTP/")
	run := func(env []string, principal string) (string, error) {
		cmd := exec.Command(sandboxtest.SystemPython, "-c", kerberosClient, endpoint, spnHost, principal)
		cmd.Env = append(os.Environ(), append([]string{"KRB5_CONFIG=" + k.Config, "PYTHONPATH=" + adapter, "NO_PROXY=*"}, env...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%v: %s", err, stderr.Bytes())
		}
		return string(out), nil
	}

	// With the password, as at a laptop.
	ccache := filepath.Join(t.TempDir(), "ccache")
	kinit := exec.Command("kinit", "-c", "FILE:"+ccache, k.Principal)
	kinit.Env = append(os.Environ(), "KRB5_CONFIG="+k.Config)
	kinit.Stdin = strings.NewReader(st.Password + "\n")
	if out, err := kinit.CombinedOutput(); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	if out, err := run([]string{"KRB5CCNAME=FILE:" + ccache}, ""); err != nil || out != "kerberos 5" {
		t.Errorf("with a kinit cache: %q, %v", out, err)
	}
	// With the exported keytab and no cache, as in CI.
	empty := filepath.Join(t.TempDir(), "none")
	if out, err := run([]string{"KRB5CCNAME=FILE:" + empty, "KRB5_CLIENT_KTNAME=" + k.ClientKeytab}, k.Principal); err != nil || out != "kerberos 5" {
		t.Errorf("with the client keytab: %q, %v", out, err)
	}
	log, _ := os.ReadFile(h.ServeLog())
	if !bytes.Contains(log, []byte("Kerberos: gsd@SANDBOX.GSD.TEST authenticated as gsd")) {
		t.Errorf("the host logged no Kerberos logon:\n%s", log)
	}

	if err := sandbox.Down(dir, nil); err != nil {
		t.Fatal(err)
	}
	if k.Answers() {
		t.Error("the KDC still answers after down")
	}
	if left := sandbox.Leftovers(dir, st.ID); len(left) > 0 {
		t.Errorf("left behind after down:\n%s", strings.Join(left, "\n"))
	}
}
