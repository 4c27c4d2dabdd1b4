package kerberos

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
	"github.com/gsd-deploy/gsd/sandbox/kdc"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// These tests run against Debian's MIT KDC (sandbox/kdc), and against
// MIT's GSS-API through python-gssapi as the other side of a context.

const (
	realmName    = "SANDBOX.GSD.TEST"
	userPassword = "Pass word-1"
	aesSPN       = "HTTP/sandbox1.sandbox.gsd.test"
	rc4SPN       = "HTTP/sandbox2.sandbox.gsd.test"
)

type realmFixture struct {
	r           *kdc.Realm
	dir         string
	ccache      string
	userKeytab  string
	keytabPaths map[string]string
	keytabs     map[string]*keytab.Keytab
}

var (
	realmOnce sync.Once
	realmFix  *realmFixture
	realmErr  error
	realms    []*kdc.Realm
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, r := range realms {
		_ = r.Stop()
		os.RemoveAll(r.Dir)
	}
	os.Exit(code)
}

func startRealm(t testing.TB, name string, offset time.Duration) *kdc.Realm {
	t.Helper()
	if err := kdc.Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	dir, err := os.MkdirTemp("", "gsd-kerberos-test-")
	if err != nil {
		t.Fatal(err)
	}
	r, err := kdc.Start(kdc.Options{Realm: name, Dir: dir, ClockOffset: offset, StopWithParent: true})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	realms = append(realms, r)
	return r
}

// sharedRealm is one realm for the package's tests: the user gsd with a
// password, a keytab and a kinit cache; an AES service and an RC4-only
// one, with their keytabs.
func sharedRealm(t testing.TB) *realmFixture {
	t.Helper()
	if err := kdc.Available(); err != nil {
		sandboxtest.Missing(t, "%v", err)
	}
	realmOnce.Do(func() {
		r := startRealm(t, realmName, 0)
		f := &realmFixture{r: r, dir: r.Dir, keytabPaths: map[string]string{}, keytabs: map[string]*keytab.Keytab{}}
		realmErr = func() error {
			if err := r.AddUser("gsd", userPassword); err != nil {
				return err
			}
			for spn, enc := range map[string][]string{aesSPN: nil, rc4SPN: {"rc4-hmac:normal"}} {
				path := filepath.Join(f.dir, strings.ReplaceAll(spn, "/", "_")+".keytab")
				if err := r.AddService(spn, path, enc...); err != nil {
					return err
				}
				kt, err := keytab.Load(path)
				if err != nil {
					return err
				}
				f.keytabPaths[spn], f.keytabs[spn] = path, kt
			}
			f.userKeytab = filepath.Join(f.dir, "gsd.keytab")
			if err := r.ExportUserKeytab("gsd", f.userKeytab); err != nil {
				return err
			}
			f.ccache = filepath.Join(f.dir, "gsd.ccache")
			return r.Kinit("gsd", userPassword, f.ccache, 0)
		}()
		realmFix = f
	})
	if realmErr != nil {
		t.Fatal(realmErr)
	}
	return realmFix
}

func (f *realmFixture) credentials() map[string]Credentials {
	return map[string]Credentials{
		"ccache":   {Config: f.r.Config, CCache: "FILE:" + f.ccache},
		"keytab":   {Config: f.r.Config, User: "gsd", Keytab: f.userKeytab},
		"password": {Config: f.r.Config, User: realmName + `\gsd`, Password: userPassword},
	}
}

func TestRealmCredentialsAndEnctypes(t *testing.T) {
	f := sharedRealm(t)
	for credName, creds := range f.credentials() {
		c, err := NewClient(creds)
		if err != nil {
			t.Fatalf("%s: %v", credName, err)
		}
		if c.Principal() != "gsd@"+realmName {
			t.Errorf("%s: principal %q", credName, c.Principal())
		}
		for _, spn := range []string{aesSPN, rc4SPN + "@" + realmName} {
			for _, spnego := range []bool{false, true} {
				init, tok, err := c.Initiate(spn, InitOptions{SPNEGO: spnego})
				if err != nil {
					t.Fatalf("%s %s: %v", credName, spn, err)
				}
				acc, err := (&Acceptor{Keytab: f.keytabs[strings.TrimSuffix(spn, "@"+realmName)]}).Accept(tok)
				if err != nil {
					t.Fatalf("%s %s: %v", credName, spn, err)
				}
				cs, err := init.Complete(acc.Token)
				if err != nil {
					t.Fatalf("%s %s: %v", credName, spn, err)
				}
				if _, isRC4 := cs.seal.(*rc4Sealer); isRC4 != strings.HasPrefix(spn, rc4SPN) {
					t.Errorf("%s %s: RC4-HMAC session: %v", credName, spn, isRC4)
				}
				exchange(t, cs, acc.Session, 3000)
				exchange(t, acc.Session, cs, 3000)
			}
		}
	}
}

func kindOf(err error) Kind {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Kind
	}
	return -1
}

func TestRealmErrors(t *testing.T) {
	f := sharedRealm(t)
	dir := t.TempDir()

	conf, err := os.ReadFile(f.r.Config)
	if err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on: the KDC's own, with the KDC elsewhere.
	l := startRealm(t, "GONE.TEST", 0)
	gone := l.Addr
	_ = l.Stop()
	unreachable := filepath.Join(dir, "unreachable.conf")
	if err := os.WriteFile(unreachable, bytes.ReplaceAll(conf, []byte(f.r.Addr), []byte(gone)), 0o644); err != nil {
		t.Fatal(err)
	}
	noDefault := filepath.Join(dir, "nodefault.conf")
	if err := os.WriteFile(noDefault, bytes.Replace(conf, []byte("default_realm"), []byte("# default_realm"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	skewed := startRealm(t, "SKEWED.TEST", time.Hour)
	if err := skewed.AddUser("gsd", userPassword); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.ccache")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	expiredAt := time.Now().Add(11 * time.Hour)

	cases := []struct {
		name  string
		creds Credentials
		now   func() time.Time
		spn   string
		want  Kind
	}{
		{"unknown SPN", Credentials{Config: f.r.Config, CCache: f.ccache}, nil, "HTTP/nobody.sandbox.gsd.test", UnknownSPN},
		{"not an SPN", Credentials{Config: f.r.Config, CCache: f.ccache}, nil, "sandbox1.sandbox.gsd.test", UnknownSPN},
		{"wrong password", Credentials{Config: f.r.Config, User: "gsd", Password: "wrong horse battery"}, nil, aesSPN, BadCredentials},
		{"unknown user", Credentials{Config: f.r.Config, User: "nobody", Password: "wrong horse battery"}, nil, aesSPN, BadCredentials},
		{"KDC unreachable", Credentials{Config: unreachable, User: "gsd", Password: userPassword}, nil, aesSPN, KDCUnreachable},
		{"realm without KDC", Credentials{Config: f.r.Config, User: "gsd@ELSEWHERE.TEST", Password: userPassword}, nil, aesSPN, WrongRealm},
		{"SPN in a realm without KDC", Credentials{Config: f.r.Config, CCache: f.ccache}, nil, aesSPN + "@ELSEWHERE.TEST", WrongRealm},
		{"no realm at all", Credentials{Config: noDefault, User: "gsd", Password: userPassword}, nil, aesSPN, WrongRealm},
		{"no configuration", Credentials{Config: filepath.Join(dir, "missing.conf"), CCache: f.ccache}, nil, aesSPN, WrongRealm},
		{"no cache", Credentials{Config: f.r.Config, CCache: filepath.Join(dir, "missing.ccache")}, nil, aesSPN, NoTicket},
		{"empty cache", Credentials{Config: f.r.Config, CCache: empty}, nil, aesSPN, NoTicket},
		{"cache of another user", Credentials{Config: f.r.Config, CCache: f.ccache, User: "admin"}, nil, aesSPN, NoTicket},
		{"keyring cache", Credentials{Config: f.r.Config, CCache: "KEYRING:persistent:0"}, nil, aesSPN, NoTicket},
		{"expired cache", Credentials{Config: f.r.Config, CCache: f.ccache}, func() time.Time { return expiredAt }, aesSPN, TicketExpired},
		{"KDC clock off", Credentials{Config: skewed.Config, User: "gsd", Password: userPassword}, nil, "HTTP/x.skewed.test", ClockSkew},
	}
	for _, c := range cases {
		now := c.now
		if now == nil {
			now = time.Now
		}
		cl, err := newClient(c.creds, now)
		if err == nil {
			_, _, err = cl.Initiate(c.spn, InitOptions{})
		}
		if kindOf(err) != c.want {
			t.Errorf("%s: %v (kind %v), want kind %v", c.name, err, kindOf(err), c.want)
			continue
		}
		for _, secret := range []string{userPassword, "wrong horse battery"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows the password: %v", c.name, err)
			}
		}
		t.Logf("%s: %v", c.name, err)
	}

	// A cache that expires while the client is in use.
	at := time.Now()
	cl, err := newClient(Credentials{Config: f.r.Config, CCache: f.ccache}, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.Initiate(aesSPN, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	at = expiredAt
	if _, _, err := cl.Initiate(aesSPN, InitOptions{}); kindOf(err) != TicketExpired {
		t.Errorf("after expiry: %v", err)
	}
}

// peer is python-gssapi running testdata/gssapi_peer.py.
type peer struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

func startPeer(t *testing.T, env []string, args ...string) *peer {
	t.Helper()
	if err := exec.Command(sandboxtest.SystemPython, "-c", "import gssapi.raw.ext_dce").Run(); err != nil {
		sandboxtest.Missing(t, "python3-gssapi for %s: %v", sandboxtest.SystemPython, err)
	}
	p := &peer{t: t}
	p.cmd = exec.Command(sandboxtest.SystemPython, append([]string{"testdata/gssapi_peer.py"}, args...)...)
	p.cmd.Env = env
	p.cmd.Stderr = &p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewReaderSize(stdout, 1<<20)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.in.Close(); _ = p.cmd.Wait() })
	return p
}

// call sends one line (nil: none) and reads one answer.
func (p *peer) call(fields ...string) []string {
	p.t.Helper()
	if len(fields) > 0 {
		if _, err := fmt.Fprintln(p.in, strings.Join(fields, " ")); err != nil {
			p.t.Fatalf("python-gssapi: %v: %s", err, p.stderr.String())
		}
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		p.in.Close()
		_ = p.cmd.Wait()
		p.t.Fatalf("python-gssapi: %v: %s", err, p.stderr.String())
	}
	return strings.Fields(line)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// talk seals messages both ways between a Go session and MIT's.
func talk(t *testing.T, s *Session, p *peer) {
	t.Helper()
	for i, n := range []int{1, 16, 100, 5000, 70_000} {
		msg := bytes.Repeat([]byte(fmt.Sprintf("<msg %d/>", i)), n/8+1)[:n]
		// Go seals, MIT opens: by IOV buffers as WinRM splits the body,
		// and by gss_unwrap of the whole token.
		body, err := s.Frame(msg)
		if err != nil {
			t.Fatal(err)
		}
		hdr, data, err := sealed.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		cmd := []string{"unwrap", b64(hdr), b64(data), strconv.Itoa(n)}
		if i%2 == 1 {
			cmd = []string{"unwrap1", b64(hdr), b64(data)}
		}
		if got := unb64(t, p.call(cmd...)[0]); !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: MIT opened %d different bytes", n, len(got))
		}
		// MIT seals, Go opens.
		r := p.call("wrap", b64(msg))
		got, err := s.Unwrap(unb64(t, r[0]), unb64(t, r[1]))
		if err != nil {
			t.Fatalf("%d bytes from MIT: %v", n, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes from MIT: opened %d different bytes", n, len(got))
		}
	}
}

func TestMITInterop(t *testing.T) {
	f := sharedRealm(t)
	rcache := t.TempDir()
	client, err := NewClient(Credentials{Config: f.r.Config, CCache: f.ccache})
	if err != nil {
		t.Fatal(err)
	}
	for _, spn := range []string{aesSPN, rc4SPN} {
		for _, mech := range []string{"krb5", "spnego"} {
			t.Run(fmt.Sprintf("MIT initiates %s %s", spn, mech), func(t *testing.T) {
				p := startPeer(t, append(f.r.Env(), "KRB5CCNAME=FILE:"+f.ccache, "KRB5RCACHEDIR="+rcache),
					"initiate", spn+"@"+realmName, mech)
				acc, err := (&Acceptor{Keytab: f.keytabs[spn]}).Accept(unb64(t, p.call()[0]))
				if err != nil {
					t.Fatal(err)
				}
				if acc.Client != "gsd@"+realmName {
					t.Errorf("client %q", acc.Client)
				}
				if _, err := fmt.Fprintln(p.in, b64(acc.Token)); err != nil {
					t.Fatal(err)
				}
				talk(t, acc.Session, p)
			})
			t.Run(fmt.Sprintf("MIT accepts %s %s", spn, mech), func(t *testing.T) {
				p := startPeer(t, append(f.r.Env(), "KRB5_KTNAME=FILE:"+f.keytabPaths[spn], "KRB5RCACHEDIR="+rcache), "accept")
				init, tok, err := client.Initiate(spn, InitOptions{SPNEGO: mech == "spnego"})
				if err != nil {
					t.Fatal(err)
				}
				r := p.call(b64(tok))
				if len(r) != 2 || r[1] != "gsd@"+realmName {
					t.Fatalf("MIT accepted %v", r)
				}
				s, err := init.Complete(unb64(t, r[0]))
				if err != nil {
					t.Fatal(err)
				}
				talk(t, s, p)
			})
		}
	}
}
