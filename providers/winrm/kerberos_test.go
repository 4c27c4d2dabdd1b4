package winrm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// TestKerberosWithoutWine carries streams over several envelopes the
// ways Kerberos reaches a domain host: HTTP with every message sealed
// (AES, and RC4-HMAC for a principal restricted to it) from a kinit's
// ticket cache, HTTP with a password, and HTTPS with a keytab, bound to
// the TLS channel. Each names what it used in hosts check.
func TestKerberosWithoutWine(t *testing.T) {
	f := kerberosRealm(t)
	h := startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: f.domainMember(nil)})
	for _, tc := range []struct {
		name string
		cfg  *config.Host
		auth []string
		enc  string
		tls  string
	}{
		{"http-ticket-cache", h.kerberosConfig(f, false),
			[]string{"Kerberos as " + testPrincipal, "ticket cache " + f.ccache, testSPN}, "sealed with the Kerberos session key", "not used"},
		{"http-rc4", func() *config.Host { c := h.kerberosConfig(f, false); c.WinRM.SPN = testRC4SPN; return c }(),
			[]string{"Kerberos as " + testPrincipal, testRC4SPN}, "sealed with the Kerberos session key", "not used"},
		{"http-password", func() *config.Host {
			c := h.kerberosConfig(f, false)
			c.WinRM.CCache, c.WinRM.User, c.WinRM.Password = "", testUser, config.Text{Value: testPassword, Sensitive: true}
			c.WinRM.Realm = testRealm
			return c
		}(), []string{"Kerberos as " + testPrincipal, "(password)"}, "sealed with the Kerberos session key", "not used"},
		{"https-keytab", h.keytabConfig(f, true),
			[]string{"Kerberos as " + testPrincipal, "keytab " + f.userKeytab, testSPN}, "TLS 1.3", "Kerberos bound to it by a channel binding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := winrm.New(tc.cfg, winrm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			in := strings.Repeat("0123456789abcdef", 80_000)
			res, err := run(t, tr, in)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != in {
				t.Errorf("echoed %d bytes, sent %d", len(res.Stdout), len(in))
			}
			if tr.MaxEnvelopeSize() != winrm.DefaultMaxEnvelopeSize {
				t.Errorf("envelope size shrank to %d: the sealed Sends did not fit", tr.MaxEnvelopeSize())
			}
			if tr.Encrypted() == tc.cfg.WinRM.HTTPS {
				t.Errorf("Encrypted() = %v over https = %v", tr.Encrypted(), tc.cfg.WinRM.HTTPS)
			}
			d := tr.Describe()
			for _, want := range tc.auth {
				if !strings.Contains(d.Auth, want) {
					t.Errorf("auth %q does not name %q", d.Auth, want)
				}
			}
			if !strings.Contains(d.Encryption, tc.enc) || !strings.Contains(d.TLS, tc.tls) {
				t.Errorf("encryption %q, tls %q", d.Encryption, d.TLS)
			}
			t.Logf("%+v", d)
		})
	}
	if n := h.count("NTLM"); n > 0 || h.count("Kerberos:", "authenticated as "+testUser) == 0 {
		t.Errorf("the host authenticated %d connections with Kerberos and logged NTLM %d times", h.count("Kerberos:", "authenticated as"), n)
	}
}

// TestKerberosErrors provokes each way Kerberos fails and checks that
// the message names the host and says the fix.
func TestKerberosErrors(t *testing.T) {
	f := kerberosRealm(t)
	h := startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: f.domainMember(nil)})
	// A host whose clock is 10 minutes ahead of the KDC's and gsd's.
	skewed := startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: f.domainMember(func(a *kerberos.Acceptor, _ *winrs.Config) {
		a.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	})})
	// A domain that restricts NTLM.
	noNTLM := startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: f.domainMember(func(_ *kerberos.Acceptor, c *winrs.Config) {
		c.RefuseNTLM = true
	})})
	dir := t.TempDir()
	// A krb5.conf whose KDC is a closed port.
	closed := closedPort(t)
	conf, err := os.ReadFile(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	unreachable := filepath.Join(dir, "unreachable.conf")
	if err := os.WriteFile(unreachable, []byte(strings.ReplaceAll(string(conf), f.Addr, closed)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A ticket that lives a few seconds.
	shortLived := filepath.Join(dir, "short")
	if err := f.Kinit(testPrincipal, testPassword, shortLived, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	expiry := time.Now().Add(2 * time.Second)

	for _, tc := range []struct {
		name  string
		host  *sandboxHost
		adapt func(*config.WinRM)
		env   string // KRB5CCNAME
		wait  time.Time
		parts []string
	}{
		{name: "clock skew", host: skewed, parts: []string{skewed.httpAddr, "time", "w32tm", "NTP"}},
		{name: "unknown SPN", adapt: func(w *config.WinRM) { w.SPN = "HTTP/nosuch.providers.gsd.test" },
			parts: []string{"HTTP/nosuch.providers.gsd.test", "setspn -S", "spn"}},
		{name: "no ticket", adapt: func(w *config.WinRM) { w.CCache = "" }, env: filepath.Join(dir, "no-such-cache"),
			parts: []string{h.httpAddr, "kinit", "keytab"}},
		{name: "expired ticket", adapt: func(w *config.WinRM) { w.CCache = shortLived }, wait: expiry,
			parts: []string{"expired", "kinit", testPrincipal}},
		{name: "wrong realm", adapt: func(w *config.WinRM) {
			w.CCache, w.User, w.Password = "", testUser, config.Text{Value: testPassword, Sensitive: true}
			w.Realm = "NOSUCH.GSD.TEST"
		}, parts: []string{"NOSUCH.GSD.TEST", "realm", "krb5.conf"}},
		{name: "KDC unreachable", adapt: func(w *config.WinRM) {
			w.CCache, w.User, w.Password = "", testPrincipal, config.Text{Value: testPassword, Sensitive: true}
			w.KRB5Conf = unreachable
		}, parts: []string{"KDC", "port 88", "krb5.conf"}},
		{name: "wrong password", adapt: func(w *config.WinRM) {
			w.CCache, w.User, w.Password = "", testPrincipal, config.Text{Value: "wrong-" + testPassword[:4], Sensitive: true}
		}, parts: []string{testPrincipal, "password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			if host == nil {
				host = h
			}
			cfg := host.kerberosConfig(f, false)
			if tc.adapt != nil {
				tc.adapt(cfg.WinRM)
			}
			if tc.env != "" {
				t.Setenv("KRB5CCNAME", tc.env)
			}
			time.Sleep(time.Until(tc.wait))
			tr, err := winrm.New(cfg, winrm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			_, err = run(t, tr, "")
			wantError(t, err, transport.ErrAuth, tc.parts...)
			if err != nil && strings.Contains(err.Error(), cfg.WinRM.Password.Value) && cfg.WinRM.Password.Value != "" {
				t.Errorf("the password is in %q", err)
			}
		})
	}

	t.Run("NTLM refused by policy", func(t *testing.T) {
		tr := noNTLM.transport(t, defaultScheme, winrm.Options{})
		_, err := run(t, tr, "")
		wantError(t, err, transport.ErrAuth, noNTLM.httpAddr, "refuses NTLM", `auth = "kerberos"`, "kinit")
	})
}

// TestNegotiate: Kerberos when a ticket can be had; NTLM with the
// password when none can, said in hosts check; and when the host
// refuses NTLM too, both reasons.
func TestNegotiate(t *testing.T) {
	f := kerberosRealm(t)
	h := startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: f.domainMember(nil)})
	noNTLM := startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: f.domainMember(func(_ *kerberos.Acceptor, c *winrs.Config) {
		c.RefuseNTLM = true
	})})
	negotiate := func(host *sandboxHost, ccache string) *config.Host {
		c := host.kerberosConfig(f, false)
		c.WinRM.Auth, c.WinRM.CCache = config.AuthNegotiate, ccache
		c.WinRM.User, c.WinRM.Password = testUser, config.Text{Value: testPassword, Sensitive: true}
		return c
	}
	for _, tc := range []struct {
		name      string
		cfg       *config.Host
		auth      string
		noteParts []string
	}{
		// The password logs in to Kerberos first.
		{"kerberos", negotiate(h, ""), "Negotiate: Kerberos as " + testPrincipal, nil},
		// An SPN the KDC does not know: no ticket can be had.
		{"ntlm", func() *config.Host { c := negotiate(h, ""); c.WinRM.SPN = "HTTP/alias.providers.gsd.test"; return c }(),
			"Negotiate: NTLM as " + testUser, []string{"fell back to NTLM", "HTTP/alias.providers.gsd.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := winrm.New(tc.cfg, winrm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if _, err := run(t, tr, "hello"); err != nil {
				t.Fatal(err)
			}
			d := tr.Describe()
			if !strings.HasPrefix(d.Auth, tc.auth) {
				t.Errorf("auth %q, want %q...", d.Auth, tc.auth)
			}
			notes := strings.Join(d.Notes, "\n")
			for _, p := range tc.noteParts {
				if !strings.Contains(notes, p) {
					t.Errorf("notes %q do not say %q", notes, p)
				}
			}
		})
	}
	t.Run("both refused", func(t *testing.T) {
		cfg := negotiate(noNTLM, "")
		cfg.WinRM.SPN = "HTTP/alias.providers.gsd.test"
		tr, err := winrm.New(cfg, winrm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		_, err = run(t, tr, "")
		wantError(t, err, transport.ErrAuth, "refuses NTLM", "Negotiate tried NTLM because", "HTTP/alias.providers.gsd.test", "setspn")
	})
}

// TestKerberosNeedsSPN: a host made in code, reached by IP, with no SPN:
// the transport refuses it before connecting, as validate would.
func TestKerberosNeedsSPN(t *testing.T) {
	h := &config.Host{Name: "web1", Address: "10.0.0.5", WinRM: &config.WinRM{Auth: config.AuthKerberos}}
	_, err := winrm.New(h, winrm.Options{})
	if err == nil || !strings.Contains(err.Error(), `spn = "HTTP/`) || !strings.Contains(err.Error(), "10.0.0.5") {
		t.Fatalf("err = %v", err)
	}
	h.Address = "web1.corp.example"
	if _, err := winrm.New(h, winrm.Options{}); err != nil {
		t.Fatalf("a host reached by name: %v", err)
	}
}
