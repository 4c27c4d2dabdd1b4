package winrm_test

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/sandbox/kdc"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// The realm the tests' hosts are members of, and their service
// principals: the first with AES keys, as a domain gives by default, the
// second with RC4-HMAC only, as an account set to it has.
const (
	testRealm  = "PROVIDERS.GSD.TEST"
	testSPN    = "HTTP/providers-test.providers.gsd.test"
	testRC4SPN = "HTTP/providers-rc4.providers.gsd.test"
)

// testPrincipal is the user's principal; the hosts map it to testUser.
var testPrincipal = testUser + "@" + testRealm

// realmFixture is one MIT KDC for the test binary: the user, the two
// service principals with their keys in one host keytab, a ticket cache
// from MIT kinit and the user's keytab for CI.
type realmFixture struct {
	*kdc.Realm
	dir        string
	hostKeytab *keytab.Keytab
	ccache     string
	userKeytab string
}

var (
	realmOnce sync.Once
	realm     *realmFixture
	realmErr  error
)

// kerberosRealm starts the shared realm on first use; stopRealm (from
// TestMain) ends it.
func kerberosRealm(t testing.TB) *realmFixture {
	t.Helper()
	if err := kdc.Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	realmOnce.Do(func() { realm, realmErr = startRealm() })
	if realmErr != nil {
		t.Fatal(realmErr)
	}
	return realm
}

func startRealm() (*realmFixture, error) {
	dir, err := os.MkdirTemp("", "gsd-providers-realm-")
	if err != nil {
		return nil, err
	}
	f := &realmFixture{dir: dir, ccache: filepath.Join(dir, "krb5cc"), userKeytab: filepath.Join(dir, "deploy.keytab")}
	if f.Realm, err = kdc.Start(kdc.Options{Realm: testRealm, Dir: filepath.Join(dir, "kdc")}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	aes, rc4 := filepath.Join(dir, "aes.keytab"), filepath.Join(dir, "rc4.keytab")
	for _, step := range []func() error{
		func() error { return f.AddUser(testUser, testPassword) },
		func() error { return f.AddService(testSPN, aes) },
		func() error { return f.AddService(testRC4SPN, rc4, "rc4-hmac:normal") },
		func() error { return f.ExportUserKeytab(testUser, f.userKeytab) },
		func() error { return f.Kinit(testPrincipal, testPassword, f.ccache, 0) },
	} {
		if err := step(); err != nil {
			stopRealm()
			return nil, err
		}
	}
	// A host holds the keys of every name it is known by.
	f.hostKeytab = keytab.New()
	for _, p := range []string{aes, rc4} {
		kt, err := keytab.Load(p)
		if err != nil {
			return nil, err
		}
		f.hostKeytab.Entries = append(f.hostKeytab.Entries, kt.Entries...)
	}
	return f, nil
}

func stopRealm() {
	if realm != nil {
		_ = realm.Stop()
		os.RemoveAll(realm.dir)
	}
}

// domainMember makes a host a member of the realm, with the acceptor's
// clock and NTLM policy adjusted by tune.
func (f *realmFixture) domainMember(tune func(*kerberos.Acceptor, *winrs.Config)) func(*winrs.Config) {
	return func(c *winrs.Config) {
		a := &kerberos.Acceptor{Keytab: f.hostKeytab}
		if tune != nil {
			tune(a, c)
		}
		c.Kerberos = a
	}
}

// kerberosConfig is the winrm block of a user who ran kinit: no user,
// the ticket cache, the SPN given because the host is reached by IP.
func (h *sandboxHost) kerberosConfig(f *realmFixture, https bool) *config.Host {
	c := h.config(scheme{https: https, auth: config.AuthKerberos})
	w := c.WinRM
	w.User, w.Password = "", config.Text{}
	w.SPN, w.KRB5Conf, w.CCache = testSPN, f.Config, f.ccache
	return c
}

// keytabConfig is the winrm block of a CI job: user and keytab.
func (h *sandboxHost) keytabConfig(f *realmFixture, https bool) *config.Host {
	c := h.kerberosConfig(f, https)
	c.WinRM.CCache = ""
	c.WinRM.User, c.WinRM.Keytab = testPrincipal, f.userKeytab
	return c
}

// closedPort is a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
