package winrs_test

import (
	"encoding/base64"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
	"github.com/gsd-deploy/gsd/sandbox/kdc"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// The test domain: one host name whose service principal has AES keys,
// and one whose account is set to RC4-HMAC only, as some domains still
// have.
const (
	testRealm = "SANDBOX.GSD.TEST"
	aesHost   = "sandbox1.sandbox.gsd.test"
	rc4Host   = "rc4.sandbox.gsd.test"
)

// kerberosDomain is a running MIT realm with the test user, a ticket
// cache MIT kinit filled for it, and the acceptor for both hosts' SPNs.
type kerberosDomain struct {
	realm    *kdc.Realm
	ccache   string
	acceptor *kerberos.Acceptor
}

func startDomain(t *testing.T) *kerberosDomain {
	t.Helper()
	if err := kdc.Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	dir := t.TempDir()
	r, err := kdc.Start(kdc.Options{Realm: testRealm, Dir: filepath.Join(dir, "kdc")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	if err := r.AddUser(testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	kt := keytab.New()
	for host, enctypes := range map[string][]string{aesHost: nil, rc4Host: {"rc4-hmac:normal"}} {
		path := filepath.Join(dir, host+".keytab")
		if err := r.AddService("HTTP/"+host, path, enctypes...); err != nil {
			t.Fatal(err)
		}
		one, err := keytab.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		kt.Entries = append(kt.Entries, one.Entries...)
	}
	d := &kerberosDomain{realm: r, ccache: filepath.Join(dir, "ccache"), acceptor: &kerberos.Acceptor{Keytab: kt}}
	if err := r.Kinit(testUser+"@"+testRealm, testPassword, d.ccache, 0); err != nil {
		t.Fatal(err)
	}
	return d
}

// env is what a client of the domain runs with: its krb5.conf, the
// ticket cache, and for pywinrm the pykerberos adapter (see
// testdata/pykerberos/kerberos.py).
func (d *kerberosDomain) env(t *testing.T) []string {
	t.Helper()
	adapter, err := filepath.Abs("testdata/pykerberos")
	if err != nil {
		t.Fatal(err)
	}
	return []string{"KRB5_CONFIG=" + d.realm.Config, "KRB5CCNAME=FILE:" + d.ccache, "PYTHONPATH=" + adapter}
}

// Debian's pywinrm with transport='kerberos' (requests-kerberos over MIT
// GSSAPI) against a domain member whose NTLM is refused by policy: over
// HTTP every message sealed with Kerberos wrap tokens, AES and RC4-HMAC;
// over HTTPS bound to the certificate. NTLM gets a 401.
func TestConformancePywinrmKerberos(t *testing.T) {
	sandboxtest.RequirePywinrm(t)
	if err := exec.Command(sandboxtest.SystemPython, "-c", "import gssapi, requests_kerberos").Run(); err != nil {
		sandboxtest.Missing(t, "python3-gssapi and python3-requests-kerberos: %v", err)
	}
	d := startDomain(t)
	host := sandboxtest.WineHost(t)
	ts := startServerWith(t, host, host, func(c *winrs.Config) {
		stock(c)
		c.Kerberos = d.acceptor
		c.RefuseNTLM = true
	})
	principal := testUser + "@" + testRealm
	cases := []string{"arguments", "lines_3000", "streams", "stdin", "envelope_limit", "shell_not_found"}
	for _, tc := range []struct {
		name, spnHost string
		https         bool
	}{
		{"http-aes-encrypted", aesHost, false},
		{"http-rc4-encrypted", rc4Host, false},
		{"https-channel-binding", aesHost, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, ca, encryption := "http://"+ts.httpAddr+"/wsman", "", "always"
			if tc.https {
				endpoint, ca, encryption = "https://"+ts.httpsAddr+"/wsman", ts.caFile, "never"
			}
			sealedBefore := ts.count("[sealed]")
			loggedOn := ts.count("Kerberos: " + principal + " authenticated as " + testUser)
			bound := ts.count("Kerberos channel binding verified")
			seen := pywinrmWith(t, d.env(t), endpoint, ca, "kerberos", encryption,
				"--user", principal, "--hostname-override", tc.spnHost, "--only", strings.Join(cases, ","),
				"--big-size", "0", "--big-sha256", "", "--unicode-name", "", "--unicode-text", "",
				"--max-envelope", strconv.Itoa(winrs.DefaultMaxEnvelopeSize))
			for _, c := range cases {
				if !seen[c] {
					t.Errorf("pywinrm case %s did not report", c)
				}
			}
			if ts.count("Kerberos: "+principal+" authenticated as "+testUser) == loggedOn {
				t.Error("the server logged no Kerberos logon")
			}
			if sealedNow := ts.count("[sealed]") - sealedBefore; !tc.https != (sealedNow > 0) {
				t.Errorf("%d sealed requests with message_encryption=%s", sealedNow, encryption)
			}
			if tc.https && ts.count("Kerberos channel binding verified") == bound {
				t.Error("no Kerberos channel binding was verified over HTTPS")
			}
		})
	}
	t.Run("ntlm-refused-by-policy", func(t *testing.T) {
		seen := pywinrm(t, "http://"+ts.httpAddr+"/wsman", "", "ntlm", "always", "--only", "refused",
			"--big-size", "0", "--big-sha256", "", "--unicode-name", "", "--unicode-text", "", "--max-envelope", "0")
		if !seen["refused"] {
			t.Error("the refusal case did not report")
		}
		if ts.count("NTLM refused by policy") == 0 {
			t.Error("the server did not log why it refused NTLM")
		}
	})
}

// gsd's way in to a domain member: a SPNEGO AP-REQ on the empty message,
// the AP-REP back in the 200, then sealed messages. A host whose clock is
// 10 minutes off answers the AP-REQ with 401 and the KRB-ERROR saying so,
// which the client reads as clock skew; a principal with no account on
// the host gets the plain 401.
func TestKerberosHandshake(t *testing.T) {
	d := startDomain(t)
	ts := startServerWith(t, echoRunner{}, nil, func(c *winrs.Config) { stock(c); c.Kerberos = d.acceptor })
	skewed := *d.acceptor
	skewed.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	late := startServerWith(t, echoRunner{}, nil, func(c *winrs.Config) { stock(c); c.Kerberos = &skewed })
	client, err := kerberos.NewClient(kerberos.Credentials{Config: d.realm.Config, CCache: d.ccache})
	if err != nil {
		t.Fatal(err)
	}
	initiate := func() (*kerberos.Initiator, []byte) {
		t.Helper()
		init, token, err := client.Initiate("HTTP/"+aesHost, kerberos.InitOptions{SPNEGO: true})
		if err != nil {
			t.Fatal(err)
		}
		return init, token
	}
	answer := func(resp *http.Response) []byte {
		t.Helper()
		scheme, token, _ := strings.Cut(resp.Header.Get("WWW-Authenticate"), " ")
		raw, err := base64.StdEncoding.DecodeString(token)
		if scheme != "Negotiate" || err != nil || len(raw) == 0 {
			t.Fatalf("%d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
		return raw
	}

	init, token := initiate()
	c := dialRaw(t, ts.httpAddr)
	resp, _ := c.do("Negotiate "+b64(token), "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("the AP-REQ: %d", resp.StatusCode)
	}
	session, err := init.Complete(answer(resp))
	if err != nil {
		t.Fatal(err)
	}
	body, err := session.Frame([]byte(envelope(wsmanCreate, "", createBody)))
	if err != nil {
		t.Fatal(err)
	}
	resp, sealedAnswer := c.do("", sealed.ContentType, body)
	if resp.StatusCode != 200 || !sealed.IsEncrypted(resp.Header.Get("Content-Type")) {
		t.Fatalf("a sealed Create: %d %q", resp.StatusCode, sealedAnswer)
	}
	if plain, err := session.Open(sealedAnswer); err != nil || !strings.Contains(string(plain), "ShellId") {
		t.Fatalf("the answer does not open to a Create response: %v %q", err, plain)
	}

	_, token = initiate()
	resp, _ = dialRaw(t, late.httpAddr).do("Negotiate "+b64(token), "", nil)
	if kerr := kerberos.ParseErrorToken(answer(resp)); resp.StatusCode != 401 || kerr == nil || kerr.Kind != kerberos.ClockSkew {
		t.Errorf("a host 10 minutes ahead: %d, %v", resp.StatusCode, kerr)
	}
	if late.count("Kerberos refused") != 1 {
		t.Error("the host did not log why it refused")
	}

	if err := d.realm.AddUser("stranger", testPassword); err != nil {
		t.Fatal(err)
	}
	strangerCache := filepath.Join(t.TempDir(), "ccache")
	if err := d.realm.Kinit("stranger@"+testRealm, testPassword, strangerCache, 0); err != nil {
		t.Fatal(err)
	}
	stranger, err := kerberos.NewClient(kerberos.Credentials{Config: d.realm.Config, CCache: strangerCache})
	if err != nil {
		t.Fatal(err)
	}
	_, token, err = stranger.Initiate("HTTP/"+aesHost, kerberos.InitOptions{SPNEGO: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = dialRaw(t, ts.httpAddr).do("Negotiate "+b64(token), "", nil)
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || !slices.Equal(got, []string{"Negotiate", "Kerberos"}) || ts.count("maps to no account") != 1 {
		t.Errorf("a principal with no account: %d %q", resp.StatusCode, got)
	}
}
