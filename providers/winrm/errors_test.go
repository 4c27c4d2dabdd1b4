package winrm_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// echoRunner stands in for Wine where only the protocol matters: every
// command copies its stdin to stdout and exits 0.
type echoRunner struct{}

func (echoRunner) Start(c winecmd.Command) (winecmd.Process, error) {
	r, w := io.Pipe()
	p := &echoProcess{stdin: w, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, _ = io.Copy(c.Stdout, r)
	}()
	return p, nil
}

type echoProcess struct {
	stdin *io.PipeWriter
	done  chan struct{}
	once  sync.Once
}

func (p *echoProcess) Stdin() io.WriteCloser { return p.stdin }
func (p *echoProcess) Wait() int             { <-p.done; return 0 }
func (p *echoProcess) Signal(winecmd.Signal) {
	p.once.Do(func() { p.stdin.CloseWithError(errors.New("terminated")) })
}

func run(t *testing.T, tr *winrm.Transport, stdin string) (transport.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	return transport.Run(ctx, tr, "gsd-test", in, 4<<20)
}

func wantError(t *testing.T, err error, kind error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("error %q contains the password", err)
	}
}

func TestStreamsWithoutWine(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	for _, s := range schemes {
		t.Run(s.name, func(t *testing.T) {
			tr := h.transport(t, s, winrm.Options{})
			before := h.count("Send ok")
			// Over several envelopes, so Sends are chunked and
			// Receives repeated.
			in := strings.Repeat("0123456789abcdef", 100_000)
			res, err := run(t, tr, in)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != in {
				t.Errorf("echoed %d bytes, sent %d", len(res.Stdout), len(in))
			}
			// Every Send fitted the host's 500 KB limit on the first try,
			// base64 and headers included, and Sends were not needlessly small.
			if got := tr.MaxEnvelopeSize(); got != winrm.DefaultMaxEnvelopeSize {
				t.Errorf("envelope size shrank to %d", got)
			}
			if sends := h.count("Send ok") - before; sends > 12 {
				t.Errorf("%d Sends for %d bytes; 5 full ones would do", sends, len(in))
			} else {
				t.Logf("%d Sends for %d bytes", sends, len(in))
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	h := &sandboxHost{httpsAddr: addr.String(), caFile: ""}
	cfg := h.config(httpsBasic)
	cfg.WinRM.CACert = ""
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, tr, "")
	wantError(t, err, transport.ErrUnreachable, "connection refused", addr.String(), "no HTTPS listener", "remove https = true")

	// Over HTTP: nothing listens where Enable-PSRemoting puts WinRM.
	h = &sandboxHost{httpAddr: addr.String()}
	tr, err = winrm.New(h.config(defaultScheme), winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, tr, "")
	wantError(t, err, transport.ErrUnreachable, "connection refused", addr.String(), "no WinRM listener", "Enable-PSRemoting", "firewall")
}

// nxdomainServer answers every DNS query on loopback with "no such name",
// so the test needs no network.
func nxdomainServer(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			resp := append([]byte(nil), buf[:n]...)
			flags := binary.BigEndian.Uint16(resp[2:])
			// QR=1, keep opcode and RD, RA=1, RCODE=3 (NXDOMAIN).
			flags = 0x8000 | flags&0x7900 | 0x0080 | 3
			binary.BigEndian.PutUint16(resp[2:], flags)
			// Question kept, no answers, no additional records.
			binary.BigEndian.PutUint16(resp[6:], 0)
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func TestDNSFailure(t *testing.T) {
	h := &sandboxHost{httpsAddr: "127.0.0.1:5986"}
	cfg := h.config(httpsBasic)
	cfg.Address = "web1.gsd-test.invalid"
	cfg.WinRM.CACert = ""
	tr, err := winrm.New(cfg, winrm.Options{Resolver: nxdomainServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, tr, "")
	wantError(t, err, transport.ErrUnreachable, `cannot resolve "web1.gsd-test.invalid"`, "no such host", "check the host's address")
}

func TestUnknownAuthority(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	cfg := h.config(httpsBasic)
	cfg.WinRM.CACert = "" // the system pool does not know the sandbox CA
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, tr, "")
	wantError(t, err, transport.ErrTrust, "unknown authority", `subject "CN=providers-test-host`, "SHA-256 fingerprint", "ca_cert")
	// The fingerprint is the host certificate's.
	if fp := certFingerprint(t, h.certFile); !strings.Contains(err.Error(), fp) {
		t.Errorf("error %q lacks fingerprint %s", err, fp)
	}

	// insecure = true skips the check, and only then.
	cfg.WinRM.Insecure = true
	tr, err = winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, tr, "x"); err != nil {
		t.Errorf("insecure: %v", err)
	}
}

func TestUnauthorized(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	for _, s := range schemes {
		t.Run(s.name, func(t *testing.T) {
			cfg := h.config(s)
			cfg.WinRM.Password.Value = "wrong-" + testPassword[:4]
			tr, err := winrm.New(cfg, winrm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = run(t, tr, "")
			scheme := map[string]string{"basic": "Basic", "ntlm": "NTLM"}[s.auth]
			wantError(t, err, transport.ErrAuth, `user "deploy"`, scheme+" authentication", "401")
			if strings.Contains(err.Error(), cfg.WinRM.Password.Value) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestFaultText(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	tr := h.transport(t, httpBasic, winrm.Options{})
	// Windows answers a request naming an unknown shell with
	// w:InvalidSelectors; the sandbox does the same.
	err := winrm.SignalForTest(context.Background(), tr, "00000000-0000-0000-0000-000000000000")
	var f *winrm.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v is not a fault", err)
	}
	wantError(t, err, nil, "WS-Management fault w:InvalidSelectors", "the shell was not found")
}

func TestSlowHost(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	cfg := h.config(httpsBasic)
	cfg.WinRM.Timeout = 2 * time.Second
	tr, err := winrm.New(cfg, winrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.faults.Set(winrs.FaultSettings{DelayMS: 4000})
	_, err = run(t, tr, "")
	wantError(t, err, transport.ErrTimeout, "no answer from "+h.httpsAddr+" within 2s", "creating a shell")

	// Once the host answers in time again, so does the transport.
	h.faults.Set(winrs.FaultSettings{})
	if _, err := run(t, tr, "again"); err != nil {
		t.Fatal(err)
	}
}

func TestBasicOverHTTPNeedsAllowUnencrypted(t *testing.T) {
	h := &sandboxHost{httpAddr: "127.0.0.1:5985"}
	cfg := h.config(httpBasic)
	cfg.WinRM.AllowUnencrypted = false
	_, err := winrm.New(cfg, winrm.Options{})
	wantError(t, err, nil, "Basic authentication over plain HTTP cannot encrypt", "NTLM (the default)", "allow_unencrypted")
}

func TestExpiredIdleShell(t *testing.T) {
	h := startHost(t, hostOptions{runner: echoRunner{}})
	tr := h.transport(t, httpsBasic, winrm.Options{})
	winrm.AddIdleShellForTest(tr, "11111111-2222-3333-4444-555555555555")
	res, err := run(t, tr, "still works")
	if err != nil || string(res.Stdout) != "still works" {
		t.Fatalf("got %q, %v", res.Stdout, err)
	}
}
