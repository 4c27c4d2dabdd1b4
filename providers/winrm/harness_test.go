package winrm_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/sandbox/pki"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

const (
	testUser     = "deploy"
	testPassword = "Sandbox-secret-7"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 8 && os.Args[1] == shapedHelper {
		os.Exit(serveShapedHost(os.Args[2:]))
	}
	code := m.Run()
	stopRealm()
	agentbuild.Cleanup()
	os.Exit(code)
}

// sandboxHost is one in-process WinRS server on loopback, over HTTP and
// HTTPS, with fault injection on both listeners.
type sandboxHost struct {
	srv       *winrs.Server
	wine      *winecmd.Host // nil for servers that run no commands
	faults    *winrs.Faults
	httpAddr  string
	httpsAddr string
	caFile    string
	certFile  string

	mu  sync.Mutex
	log []string // one line per request, from the server
}

// count returns how many logged requests contain all of words.
func (h *sandboxHost) count(words ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
next:
	for _, l := range h.log {
		for _, w := range words {
			if !strings.Contains(l, w) {
				continue next
			}
		}
		n++
	}
	return n
}

type hostOptions struct {
	maxEnvelope int
	runner      winrs.Runner
	// stock keeps Windows' defaults (no Basic, no unencrypted messages);
	// otherwise the host also takes the schemes admins turn on.
	stock bool
	// configure, when set, adjusts the server's configuration last.
	configure func(*winrs.Config)
}

func startHost(t testing.TB, o hostOptions) *sandboxHost {
	t.Helper()
	h := &sandboxHost{faults: &winrs.Faults{}}
	runner := o.runner
	if runner == nil {
		h.wine = sandboxtest.WineHost(t)
		runner = h.wine
	}
	cfg := winrs.Config{
		Machine:          "PROVIDERS-TEST",
		User:             testUser,
		Password:         testPassword,
		MaxEnvelopeSize:  o.maxEnvelope,
		Runner:           runner,
		Faults:           h.faults,
		Basic:            !o.stock,
		AllowUnencrypted: !o.stock,
		Logf: func(format string, args ...any) {
			h.mu.Lock()
			h.log = append(h.log, fmt.Sprintf(format, args...))
			h.mu.Unlock()
		},
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	h.srv = winrs.New(cfg)
	ca, certPEM, cert := newCertificate(t)
	if err := h.srv.SetCertificate(&cert); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h.caFile = filepath.Join(dir, "ca.pem")
	h.certFile = filepath.Join(dir, "host.pem")
	if err := os.WriteFile(h.caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	hl, err := h.faults.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := h.faults.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.httpAddr, h.httpsAddr = hl.Addr().String(), sl.Addr().String()
	newServer := func() *http.Server {
		return &http.Server{Handler: h.srv, ConnContext: h.srv.ConnContext, ReadHeaderTimeout: 30 * time.Second}
	}
	s1, s2 := newServer(), newServer()
	go func() { _ = s1.Serve(hl) }()
	go func() {
		_ = s2.Serve(tls.NewListener(sl, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}()
	t.Cleanup(func() {
		h.faults.Set(winrs.FaultSettings{})
		s1.Close()
		s2.Close()
		h.srv.Close()
	})
	return h
}

// newCertificate makes a CA and a certificate for 127.0.0.1 signed by it.
func newCertificate(t testing.TB) (*pki.CA, []byte, tls.Certificate) {
	t.Helper()
	ca, err := pki.NewCA("gsd providers test CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("providers-test-host", []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca, certPEM, cert
}

// scheme is one way of reaching a sandbox host.
type scheme struct {
	name  string
	https bool
	auth  string
	// plain sends unencrypted messages over HTTP (allow_unencrypted).
	plain bool
}

// schemes are the ways in: the default first (HTTP, NTLM, every message
// encrypted with the session key), then what admins turn on.
var schemes = []scheme{
	{"http-ntlm-encrypted", false, "ntlm", false},
	{"http-basic", false, "basic", true},
	{"https-basic", true, "basic", false},
	{"https-ntlm", true, "ntlm", false},
}

// Named ways in, for tests that need one in particular.
var (
	defaultScheme = schemes[0]
	httpBasic     = schemes[1]
	httpsBasic    = schemes[2]
	httpsNTLM     = schemes[3]
)

// config returns the host block for s.
func (h *sandboxHost) config(s scheme) *config.Host {
	addr := h.httpAddr
	if s.https {
		addr = h.httpsAddr
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	w := &config.WinRM{
		HTTPS:    s.https,
		Port:     p,
		Auth:     s.auth,
		User:     testUser,
		Password: config.Text{Value: testPassword, Sensitive: true},
		Timeout:  60 * time.Second,
	}
	if s.https {
		w.CACert = h.caFile
	}
	w.AllowUnencrypted = s.plain
	return &config.Host{Name: "web1", Address: host, WinRM: w}
}

func (h *sandboxHost) transport(t *testing.T, s scheme, opts winrm.Options) *winrm.Transport {
	t.Helper()
	tr, err := winrm.New(h.config(s), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func agentFor(t *testing.T, v agentbuild.Variant) providers.Agent {
	t.Helper()
	a, err := providers.AgentFromFile(agentbuild.Path(t, v))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func connect(t *testing.T, tr *winrm.Transport, a providers.Agent) *providers.Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h, err := providers.Connect(ctx, "web1", tr, providers.Options{Agent: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// unixPath is where a Windows path of the host lives on this machine.
func (h *sandboxHost) unixPath(t testing.TB, win string) string {
	t.Helper()
	p, err := h.wine.UnixPath(win)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
