package winrs_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

const (
	wsmanSend   = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
	wsmanSignal = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
	terminate   = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
	// hangGuard only turns a hang into a failure; no assertion is about
	// how fast anything is.
	hangGuard = 60 * time.Second
)

// stuckRunner starts processes that never read their input, never write
// and run until terminated; it counts the starts.
type stuckRunner struct {
	starts atomic.Int32
	procs  chan *stuckProcess
}

type stuckProcess struct {
	r          *io.PipeReader
	w          *io.PipeWriter
	terminated chan struct{}
	once       sync.Once
}

func newStuckRunner() *stuckRunner { return &stuckRunner{procs: make(chan *stuckProcess, 100)} }

func (sr *stuckRunner) Start(winecmd.Command) (winecmd.Process, error) {
	sr.starts.Add(1)
	r, w := io.Pipe()
	p := &stuckProcess{r: r, w: w, terminated: make(chan struct{})}
	sr.procs <- p
	return p, nil
}

func (p *stuckProcess) Stdin() io.WriteCloser { return p.w }
func (p *stuckProcess) Wait() int             { <-p.terminated; return 1 }
func (p *stuckProcess) Signal(winecmd.Signal) {
	p.once.Do(func() { close(p.terminated) })
	p.r.Close()
}

// postGuarded is post with a client that gives up on a hung request.
func postGuarded(t *testing.T, addr, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/wsman", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", soap)
	req.SetBasicAuth(testUser, testPassword)
	resp, err := (&http.Client{Timeout: hangGuard}).Do(req)
	if err != nil {
		t.Fatalf("request failed (the server hung?): %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func withTimeout(env, timeout string) string {
	return strings.Replace(env, "<w:OperationTimeout>PT5S<", "<w:OperationTimeout>"+timeout+"<", 1)
}

const cmdID = "22222222-2222-2222-2222-222222222222"

func startCommand(t *testing.T, addr, shell string) (int, string) {
	t.Helper()
	return postGuarded(t, addr, envelope(wsmanCommand, shell,
		`<rsp:CommandLine CommandId="`+cmdID+`"><rsp:Command>never-reads</rsp:Command></rsp:CommandLine>`))
}

// TestSendToCommandNotReadingStdin: input for a command that never reads
// it is queued up to a bound; past it a Send waits at most its
// OperationTimeout and gets w:TimedOut, as on Windows, and the shell
// still answers and ends the command.
func TestSendToCommandNotReadingStdin(t *testing.T) {
	sr := newStuckRunner()
	ts := startServer(t, sr, nil)
	shell := createShell(t, ts.httpAddr)
	if status, body := startCommand(t, ts.httpAddr, shell); status != 200 {
		t.Fatalf("command: %d %s", status, body)
	}
	proc := <-sr.procs
	chunk := base64.StdEncoding.EncodeToString(make([]byte, 300_000))
	send := withTimeout(envelope(wsmanSend, shell,
		`<rsp:Send><rsp:Stream Name="stdin" CommandId="`+cmdID+`">`+chunk+`</rsp:Stream></rsp:Send>`), "PT0.2S")
	var timedOut bool
	for i := 0; i < 10 && !timedOut; i++ {
		status, body := postGuarded(t, ts.httpAddr, send)
		switch {
		case status == 200:
		case status == 500 && strings.Contains(body, "w:TimedOut") && strings.Contains(body, "2150858793"):
			timedOut = true
			if i == 0 {
				t.Error("the first Send timed out: input is not queued at all")
			}
		default:
			t.Fatalf("send %d: %d %s", i, status, body)
		}
	}
	if !timedOut {
		t.Fatal("3 MB queued for a command that reads nothing: stdin is unbounded")
	}
	status, body := postGuarded(t, ts.httpAddr, envelope(wsmanSignal, shell,
		`<rsp:Signal CommandId="`+cmdID+`"><rsp:Code>`+terminate+`</rsp:Code></rsp:Signal>`))
	if status != 200 {
		t.Fatalf("terminate: %d %s", status, body)
	}
	select {
	case <-proc.terminated:
	case <-time.After(hangGuard):
		t.Fatal("the command was not terminated")
	}
}

// TestDuplicateCommandIDNotRun: a Command reusing a running command's id
// is refused before anything starts.
func TestDuplicateCommandIDNotRun(t *testing.T) {
	sr := newStuckRunner()
	ts := startServer(t, sr, nil)
	shell := createShell(t, ts.httpAddr)
	if status, body := startCommand(t, ts.httpAddr, shell); status != 200 {
		t.Fatalf("command: %d %s", status, body)
	}
	status, body := startCommand(t, ts.httpAddr, shell)
	if status != 500 || !strings.Contains(body, "already in use") {
		t.Fatalf("duplicate CommandId: %d %s", status, body)
	}
	if n := sr.starts.Load(); n != 1 {
		t.Fatalf("the runner started %d processes for one CommandId", n)
	}
}

// TestAbandonedCommandIsReaped: a client that disappears leaves a shell
// whose command ends after the idle timeout with no further request.
func TestAbandonedCommandIsReaped(t *testing.T) {
	sr := newStuckRunner()
	srv := winrs.New(winrs.Config{User: testUser, Password: testPassword, Runner: sr, IdleTimeout: 50 * time.Millisecond, Basic: true, AllowUnencrypted: true})
	addr := httptestServer(t, srv)
	shell := createShell(t, addr)
	if status, body := startCommand(t, addr, shell); status != 200 {
		t.Fatalf("command: %d %s", status, body)
	}
	proc := <-sr.procs
	select {
	case <-proc.terminated:
	case <-time.After(hangGuard):
		t.Fatal("an abandoned command still runs: nothing reaps without a request")
	}
	if srv.Shells() != 0 {
		t.Errorf("%d shells left", srv.Shells())
	}
}

// TestReceiveTooSmallEnvelopeFaults: a client whose MaxEnvelopeSize no
// response can meet gets w:EncodingLimit, never a larger response than
// it asked for.
func TestReceiveTooSmallEnvelopeFaults(t *testing.T) {
	ts := startServer(t, echoRunner{}, nil)
	shell := createShell(t, ts.httpAddr)
	status, body := postGuarded(t, ts.httpAddr, envelope(wsmanCommand, shell,
		`<rsp:CommandLine CommandId="`+cmdID+`"><rsp:Command>`+strings.Repeat("y", 20_000)+`</rsp:Command></rsp:CommandLine>`))
	if status != 200 {
		t.Fatalf("command: %d %s", status, body)
	}
	receive := func(size string) (int, string) {
		return postGuarded(t, ts.httpAddr, strings.Replace(envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive", shell,
			`<rsp:Receive><rsp:DesiredStream CommandId="`+cmdID+`">stdout stderr</rsp:DesiredStream></rsp:Receive>`),
			"<w:OperationTimeout>", "<w:MaxEnvelopeSize>"+size+"</w:MaxEnvelopeSize><w:OperationTimeout>", 1))
	}
	status, body = receive("2000")
	if len(body) > 2000 && status == 200 {
		t.Fatalf("a %d-byte response to a MaxEnvelopeSize of 2000", len(body))
	}
	if status != 500 || !strings.Contains(body, "w:EncodingLimit") || !strings.Contains(body, "MaxEnvelopeSize") {
		t.Fatalf("MaxEnvelopeSize 2000: %d %s", status, body)
	}
	// A small envelope that fits some output still works, within its size.
	for i := 0; ; i++ {
		status, body := receive("4000")
		if status != 200 || len(body) > 4000 {
			t.Fatalf("MaxEnvelopeSize 4000: %d, %d bytes", status, len(body))
		}
		if strings.Contains(body, "CommandState/Done") {
			break
		}
		if i > 200 {
			t.Fatal("never done")
		}
	}
}

// TestShellOwnerIgnoresLocalDomain: the same account written as
// "MACHINE\user", ".\USER" or "user" owns the same shells.
func TestShellOwnerIgnoresLocalDomain(t *testing.T) {
	ts := startServer(t, echoRunner{}, nil)
	shell := createShell(t, ts.httpAddr)
	for _, user := range []string{`SANDBOX-TEST\gsd`, `.\GSD`, `sandbox-test\Gsd`} {
		req, err := http.NewRequest(http.MethodPost, "http://"+ts.httpAddr+"/wsman", strings.NewReader(envelope(wsmanCommand, shell,
			`<rsp:CommandLine><rsp:Command>echo</rsp:Command></rsp:CommandLine>`)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", soap)
		req.SetBasicAuth(user, testPassword)
		resp, err := (&http.Client{Timeout: hangGuard}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", user, resp.StatusCode, b)
		}
	}
}

// TestWindowsDefaults: on a stock host Basic is neither offered nor
// accepted and unencrypted plain HTTP is refused, while HTTPS still
// serves.
func TestWindowsDefaults(t *testing.T) {
	ts := startServerWith(t, echoRunner{}, nil, stock)
	status, _, hdr := post(t, ts.httpAddr, soap, envelope(wsmanCreate, "", createBody), true)
	if status != 401 {
		t.Errorf("Basic with Basic off: %d", status)
	}
	for _, v := range hdr.Values("WWW-Authenticate") {
		if strings.HasPrefix(v, "Basic") {
			t.Errorf("Basic is still offered: %q", hdr.Values("WWW-Authenticate"))
		}
	}

	plain := startServerWith(t, echoRunner{}, nil, func(c *winrs.Config) { c.AllowUnencrypted = false })
	if status, _, _ := post(t, plain.httpAddr, soap, envelope(wsmanCreate, "", createBody), true); status != 401 {
		t.Errorf("unencrypted HTTP with AllowUnencrypted=false: %d", status)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(plain.caPEM)
	client := &http.Client{Timeout: hangGuard, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(http.MethodPost, "https://"+plain.httpsAddr+"/wsman", strings.NewReader(envelope(wsmanCreate, "", createBody)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", soap)
	req.SetBasicAuth(testUser, testPassword)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HTTPS with AllowUnencrypted=false: %d", resp.StatusCode)
	}
}
