package winrs_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/pki"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

const (
	testUser     = "gsd"
	testPassword = "Sandbox-pässword-1"
	// Unicode in a file name and in its content: the name travels through
	// XML, UTF-16 command lines and Wine's file system; the content comes
	// back as bytes.
	unicodeName = "gsd-ünïcödé-✓.txt"
	unicodeText = "héllo wörld ✓ 日本語 🚀\r\n"
	bigSize     = 10 << 20
)

// testServer is one WinRS server on loopback, HTTP and HTTPS, over a
// fresh Wine prefix.
type testServer struct {
	srv       *winrs.Server
	host      *winecmd.Host
	httpAddr  string
	httpsAddr string
	caPEM     []byte
	caFile    string
	bigSHA256 string
	faults    *winrs.Faults

	mu  sync.Mutex
	log []string
}

func (ts *testServer) logf(format string, args ...any) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.log = append(ts.log, strings.TrimSpace(sprintf(format, args...)))
}

// count returns how many log lines contain all of the words.
func (ts *testServer) count(words ...string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
next:
	for _, l := range ts.log {
		for _, w := range words {
			if !strings.Contains(l, w) {
				continue next
			}
		}
		n++
	}
	return n
}

func startServer(t *testing.T, runner winrs.Runner, host *winecmd.Host) *testServer {
	t.Helper()
	return startServerWith(t, runner, host, nil)
}

// startServerWith is startServer with configure, when set, adjusting the
// server's configuration last.
func startServerWith(t *testing.T, runner winrs.Runner, host *winecmd.Host, configure func(*winrs.Config)) *testServer {
	t.Helper()
	ts := &testServer{host: host, faults: &winrs.Faults{}}
	// The raw-protocol tests speak Basic over plain HTTP, which admins
	// turn on; tests of a stock host switch both off again.
	cfg := winrs.Config{
		Machine:          "SANDBOX-TEST",
		User:             testUser,
		Password:         testPassword,
		Runner:           runner,
		Faults:           ts.faults,
		Logf:             ts.logf,
		Basic:            true,
		AllowUnencrypted: true,
	}
	if configure != nil {
		configure(&cfg)
	}
	ts.srv = winrs.New(cfg)
	ca, err := pki.NewCA("gsd sandbox test")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("sandbox-test", []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.SetCertificate(&cert); err != nil {
		t.Fatal(err)
	}
	ts.caPEM = ca.CertPEM
	ts.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ts.caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	hl, err := ts.faults.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.httpAddr, ts.httpsAddr = hl.Addr().String(), sl.Addr().String()
	newHTTP := func() *http.Server {
		return &http.Server{Handler: ts.srv, ConnContext: ts.srv.ConnContext, ReadHeaderTimeout: 30 * time.Second}
	}
	h1, h2 := newHTTP(), newHTTP()
	go func() { _ = h1.Serve(hl) }()
	go func() {
		_ = h2.Serve(tls.NewListener(sl, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}()
	t.Cleanup(func() {
		h1.Close()
		h2.Close()
		ts.srv.Close()
	})
	return ts
}

// stock leaves a server with Windows' own defaults: Basic off,
// unencrypted messages refused.
func stock(c *winrs.Config) { c.Basic, c.AllowUnencrypted = false, false }

// stockTwin is a second server over ts's Wine host with Windows' own
// defaults (Basic off, unencrypted messages refused): the stock way in,
// which the encrypted transports take.
func (ts *testServer) stockTwin(t *testing.T) *testServer {
	t.Helper()
	twin := startServerWith(t, ts.host, ts.host, stock)
	twin.bigSHA256 = ts.bigSHA256
	return twin
}

// wineServer is a server running commands under Wine, with the files the
// conformance cases read placed on its C: drive.
func wineServer(t *testing.T) *testServer {
	t.Helper()
	host := sandboxtest.WineHost(t)
	ts := startServer(t, host, host)
	driveC := filepath.Join(host.Prefix, "drive_c")
	if err := os.WriteFile(filepath.Join(driveC, unicodeName), []byte(unicodeText), 0o644); err != nil {
		t.Fatal(err)
	}
	// Text, not random bytes: cmd's type stops at a Ctrl-Z, as on Windows.
	big := make([]byte, 0, bigSize)
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-gsd-sandbox-big-output-line-\r\n")
	for len(big) < bigSize {
		big = append(big, line[:min(len(line), bigSize-len(big))]...)
	}
	if err := os.WriteFile(filepath.Join(driveC, "gsd-big.txt"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	ts.bigSHA256 = hex.EncodeToString(sum[:])
	return ts
}
