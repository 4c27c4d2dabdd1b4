package kdc

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

func startRealm(t *testing.T, o Options) *Realm {
	t.Helper()
	if err := Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	o.StopWithParent = true
	r, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// TestRealmIssuesTickets runs the whole life of a realm with MIT's own
// tools: a user kinits with its password and with its exported keytab,
// and gets a ticket for a service whose keytab was written.
func TestRealmIssuesTickets(t *testing.T) {
	r := startRealm(t, Options{Realm: "SANDBOX.GSD.TEST"})
	dir := t.TempDir()
	if err := r.AddUser("gsd", "Pass word-1"); err != nil {
		t.Fatal(err)
	}
	spn := "HTTP/sandbox1.sandbox.gsd.test"
	svcKeytab := filepath.Join(dir, "http.keytab")
	if err := r.AddService(spn, svcKeytab); err != nil {
		t.Fatal(err)
	}
	rc4SPN := "HTTP/sandbox2.sandbox.gsd.test"
	if err := r.AddService(rc4SPN, filepath.Join(dir, "rc4.keytab"), "rc4-hmac:normal"); err != nil {
		t.Fatal(err)
	}
	out, err := r.command("klist", nil, "-k", "-e", svcKeytab)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{spn + "@SANDBOX.GSD.TEST", "(aes256-cts-hmac-sha1-96)", "(aes128-cts-hmac-sha1-96)", "arcfour-hmac)"} {
		if !strings.Contains(out, want) {
			t.Errorf("service keytab lacks %s:\n%s", want, out)
		}
	}

	ccache := filepath.Join(dir, "cc")
	if err := r.Kinit("gsd@SANDBOX.GSD.TEST", "Pass word-1", ccache, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.command("kvno", nil, "-c", "FILE:"+ccache, spn, rc4SPN); err != nil {
		t.Fatal(err)
	}
	list, err := r.Klist(ccache)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Default principal: gsd@SANDBOX.GSD.TEST", "krbtgt/SANDBOX.GSD.TEST@SANDBOX.GSD.TEST", spn + "@SANDBOX.GSD.TEST"} {
		if !strings.Contains(list, want) {
			t.Errorf("klist lacks %q:\n%s", want, list)
		}
	}
	// The RC4-only service gets RC4 tickets with RC4 session keys, as an
	// account restricted to RC4 in a domain does.
	rc4 := list[strings.Index(list, rc4SPN):]
	// (MIT 1.20 prefixes DEPRECATED: to the name.)
	if !regexp.MustCompile(`Etype \(skey, tkt\): (DEPRECATED:)?arcfour-hmac, (DEPRECATED:)?arcfour-hmac`).MatchString(rc4) {
		t.Errorf("RC4-only service's ticket is not RC4:\n%s", rc4)
	}

	if err := r.Kinit("gsd@SANDBOX.GSD.TEST", "wrong", filepath.Join(dir, "cc2"), 0); err == nil {
		t.Error("kinit with a wrong password succeeded")
	} else if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}

	userKeytab := filepath.Join(dir, "gsd.keytab")
	if err := r.ExportUserKeytab("gsd", userKeytab); err != nil {
		t.Fatal(err)
	}
	if _, err := r.command("kinit", nil, "-k", "-t", userKeytab, "-c", "FILE:"+filepath.Join(dir, "cc3"), "gsd"); err != nil {
		t.Fatal(err)
	}
	// -norandkey kept the password working.
	if err := r.Kinit("gsd", "Pass word-1", filepath.Join(dir, "cc4"), 0); err != nil {
		t.Fatal(err)
	}
}

func TestStopEndsKDC(t *testing.T) {
	r := startRealm(t, Options{Realm: "STOP.TEST"})
	if !r.answers() {
		t.Fatal("KDC does not answer after Start")
	}
	b, err := os.ReadFile(r.PIDFile)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatalf("no pid file: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if r.answers() {
		t.Error("KDC still answers after Stop")
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Realm: "lower.case", Dir: t.TempDir()}, {Realm: "X.TEST"}} {
		if _, err := Start(o); err == nil || errors.Is(err, ErrMissing) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := quote(`a"b`); err == nil {
		t.Error("a quote in a kadmin argument was accepted")
	}
}
