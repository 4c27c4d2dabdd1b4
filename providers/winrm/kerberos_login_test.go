package winrm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
)

// Every host with the same credentials shares one login, so a run asks
// the KDC once, not once per host (and a refused password is not tried
// again on each of them); other credentials get their own.
func TestKerberosLoginIsSharedByCredentials(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(conf, []byte("[libdefaults]\n default_realm = SHARE.TEST\n[realms]\n SHARE.TEST = {\n  kdc = 127.0.0.1:1\n }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := kerberos.Credentials{Config: conf, User: "deploy", Password: "pw", Realm: "SHARE.TEST"}
	other := creds
	other.User = "builder"
	a, b, c := &kerberosAuth{creds: creds}, &kerberosAuth{creds: creds}, &kerberosAuth{creds: other}
	la, err := a.loggedIn()
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := b.loggedIn()
	lc, _ := c.loggedIn()
	if la != lb || la == lc {
		t.Errorf("logins: same credentials shared %v, other credentials shared %v", la == lb, la == lc)
	}
}
