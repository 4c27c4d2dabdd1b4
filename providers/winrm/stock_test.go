package winrm_test

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/sandbox/ntlm"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// What a stock Windows Server (Basic off, unencrypted messages refused)
// refuses, provoked against a sandbox host with those settings, and what
// gsd says: each its own message, naming the host and the fix.

const otherPassword = "Other-secret-9"

func stockHost(t *testing.T, configure func(*winrs.Config)) *sandboxHost {
	t.Helper()
	return startHost(t, hostOptions{runner: echoRunner{}, stock: true, configure: func(c *winrs.Config) {
		c.Accounts = []winrs.Account{
			{User: "localadmin", Password: otherPassword, Role: winrs.FilteredAdministrator},
			{User: "operator", Password: otherPassword, Role: winrs.RemoteManagementUser},
		}
		if configure != nil {
			configure(c)
		}
	}})
}

func runAs(t *testing.T, cfg *config.Host) error {
	t.Helper()
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = run(t, tr, "x")
	return err
}

func TestStockHostRefusals(t *testing.T) {
	h := stockHost(t, nil)
	as := func(user, password string) *config.Host {
		cfg := h.config(defaultScheme)
		cfg.WinRM.User, cfg.WinRM.Password.Value = user, password
		return cfg
	}

	t.Run("the default way in works", func(t *testing.T) {
		if err := runAs(t, h.config(defaultScheme)); err != nil {
			t.Fatal(err)
		}
		if h.count("[sealed]") == 0 {
			t.Error("no sealed message reached the host")
		}
	})
	t.Run("bad password", func(t *testing.T) {
		err := runAs(t, as(testUser, "not-"+testPassword))
		wantError(t, err, transport.ErrAuth, h.httpAddr, `refused user "deploy"`, "user name or password is wrong", "LocalAccountTokenFilterPolicy")
	})
	t.Run("UAC-filtered administrator", func(t *testing.T) {
		// Windows answers as for a wrong password; gsd names both causes.
		err := runAs(t, as("localadmin", otherPassword))
		wantError(t, err, transport.ErrAuth, `refused user "localadmin"`, "local administrator other than the built-in Administrator", "LocalAccountTokenFilterPolicy = 1")
		if h.count("token is filtered") == 0 {
			t.Error("the host did not refuse the filtered token")
		}
	})
	t.Run("account not an administrator", func(t *testing.T) {
		err := runAs(t, as("operator", otherPassword))
		wantError(t, err, transport.ErrAuth, h.httpAddr, `let user "operator" in but refused it a shell`, "Access is denied", "Administrators group")
	})
	t.Run("Basic disabled", func(t *testing.T) {
		for _, s := range []scheme{httpsBasic, httpBasic} {
			err := runAs(t, h.config(s))
			wantError(t, err, transport.ErrAuth, "does not accept Basic authentication", "it offers Negotiate", `remove auth = "basic"`, `@{Basic="true"}`)
		}
	})
	t.Run("unencrypted messages refused", func(t *testing.T) {
		cfg := h.config(defaultScheme)
		cfg.WinRM.AllowUnencrypted = true
		err := runAs(t, cfg)
		wantError(t, err, transport.ErrAuth, h.httpAddr, "refuses unencrypted messages (AllowUnencrypted = false", "remove allow_unencrypted")
	})
}

func TestCertificateForAnotherName(t *testing.T) {
	h := stockHost(t, nil)
	ca, _, _ := newCertificate(t)
	certPEM, keyPEM, err := ca.Issue("elsewhere", []string{"elsewhere.example"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.srv, ConnContext: h.srv.ConnContext}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := (&sandboxHost{httpsAddr: l.Addr().String()}).config(httpsNTLM)
	cfg.WinRM.CACert = caFile
	err = runAs(t, cfg)
	wantError(t, err, transport.ErrTrust, "is not valid for this address", "elsewhere.example", "Set address to a name the certificate holds", "certificate for 127.0.0.1")
}

// sleepRunner's commands print nothing for a while, then exit.
type sleepRunner struct{ d time.Duration }

func (r sleepRunner) Start(c winecmd.Command) (winecmd.Process, error) {
	pr, pw := io.Pipe()
	p := &echoProcess{stdin: pw, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		time.Sleep(r.d)
		_, _ = io.Copy(io.Discard, pr)
	}()
	return p, nil
}

// A host whose MaxTimeoutms is below what gsd asks for ends each wait
// early ([MS-WSMV] 3.1.4.1.6: it cuts OperationTimeout to the limit).
// gsd polls again, learns the limit, and says how to match it.
func TestTimeoutAboveMaxTimeoutms(t *testing.T) {
	h := startHost(t, hostOptions{runner: sleepRunner{3 * time.Second}, stock: true, configure: func(c *winrs.Config) {
		c.MaxTimeout = time.Second
	}})
	cfg := h.config(defaultScheme)
	cfg.WinRM.Timeout = 8 * time.Second // asks for 4 s per Receive
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := run(t, tr, ""); err != nil {
		t.Fatalf("a host with a short MaxTimeoutms failed the command: %v", err)
	}
	notes := tr.Describe().Notes
	if len(notes) != 1 {
		t.Fatalf("notes: %q", notes)
	}
	for _, want := range []string{h.httpAddr, "after 1s (its MaxTimeoutms)", "asks for 4s", "timeout = 8s", "set timeout = 2s", `@{MaxTimeoutms="4000"}`} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("note %q lacks %q", notes[0], want)
		}
	}
}

// A host (or anything in the path) that answers an encrypted message in
// clear text is refused: gsd takes nothing unsealed once it seals.
func TestUnsealedAnswerRefused(t *testing.T) {
	s := &ntlm.Server{Computer: "ROGUE", Accounts: []ntlm.Account{{User: testUser, Password: testPassword}}}
	// The challenge in flight: gsd authenticates one connection at a
	// time here.
	var pending *ntlm.Pending
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		scheme, data, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		msg, _ := base64.StdEncoding.DecodeString(data)
		switch {
		case scheme == "Negotiate" && ntlm.IsNegotiate(msg):
			ch, p, err := s.Challenge(msg)
			if err != nil {
				t.Error(err)
			}
			pending = p
			w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(ch))
			w.WriteHeader(http.StatusUnauthorized)
		case scheme == "Negotiate" && ntlm.IsAuthenticate(msg):
			if _, err := pending.Authenticate(msg); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
			}
		default:
			w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
			_, _ = w.Write([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`))
		}
	}))
	srv.Start()
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	cfg := &config.Host{Name: "web1", Address: host, WinRM: &config.WinRM{Port: p, User: testUser,
		Password: config.Text{Value: testPassword, Sensitive: true}, Timeout: 10 * time.Second}}
	err := runAs(t, cfg)
	wantError(t, err, transport.ErrTrust, "answered an encrypted message in clear text", "refuses")
}
