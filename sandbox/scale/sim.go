package scale

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/bootstrap"
	"github.com/gsd-deploy/gsd/agent/eventlog"
	"github.com/gsd-deploy/gsd/agent/eventlog/eventlogtest"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/sandbox/pki"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// Options shape a simulated fleet.
type Options struct {
	Hosts int
	// Delay is added to every WinRM answer: a host in another datacenter.
	Delay    time.Duration
	User     string
	Password string
	// Dir holds the hosts' agent roots and the CA certificate.
	Dir string
	// HTTPS puts the hosts behind an HTTPS listener. Without it they are
	// reached the default way, as a stock Windows Server is: HTTP, NTLM,
	// every message encrypted with the session key.
	HTTPS bool
}

// Fleet is a running set of simulated hosts on 127.0.0.1.
type Fleet struct {
	Hosts  []*Host
	CAFile string
	opts   Options
}

// Host is one simulated host.
type Host struct {
	Name string
	Port int
	// Facts counts facts requests its agents served; Conns the
	// connections accepted (each a TLS handshake and, with NTLM, an
	// authentication); Resumed the TLS handshakes that resumed an earlier
	// session instead of a full one.
	Facts, Conns, Resumed atomic.Int64
	// Requests counts the WS-Management requests it answered.
	Requests atomic.Int64
	srv      *winrs.Server
	http     *http.Server
}

// Start starts opts.Hosts hosts, each on its own loopback port.
func Start(opts Options) (*Fleet, error) {
	ca, err := pki.NewCA("gsd scale CA")
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.Issue("127.0.0.1", []string{"127.0.0.1", "localhost"})
	if err != nil {
		return nil, err
	}
	cert, err := pki.TLSCertificate(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	f := &Fleet{CAFile: filepath.Join(opts.Dir, "ca.pem"), opts: opts}
	if err := os.WriteFile(f.CAFile, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	for i := range opts.Hosts {
		h, err := f.startHost(i, &cert)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.Hosts = append(f.Hosts, h)
	}
	return f, nil
}

func (f *Fleet) startHost(i int, cert *tls.Certificate) (*Host, error) {
	h := &Host{Name: fmt.Sprintf("sim%04d", i+1)}
	root := filepath.Join(f.opts.Dir, h.Name)
	faults := &winrs.Faults{}
	faults.Set(winrs.FaultSettings{DelayMS: int(f.opts.Delay.Milliseconds())})
	h.srv = winrs.New(winrs.Config{Machine: strings.ToUpper(h.Name), User: f.opts.User, Password: f.opts.Password,
		Runner: &runner{root: root, services: newServices(), host: h, eventLog: &eventlog.Handler{Sources: &eventlogtest.Sources{}, Logs: &eventlogtest.Logs{}}}, Faults: faults})
	l, err := faults.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h.Port = l.Addr().(*net.TCPAddr).Port
	h.http = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Requests.Add(1); h.srv.ServeHTTP(w, r) }), ConnContext: h.srv.ConnContext, ReadHeaderTimeout: 30 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				h.Conns.Add(1)
			}
		}}
	if !f.opts.HTTPS {
		go h.http.Serve(l)
		return h, nil
	}
	if err := h.srv.SetCertificate(cert); err != nil {
		return nil, err
	}
	go h.http.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				h.Resumed.Add(1)
			}
			return nil
		}}))
	return h, nil
}

// Close stops every host.
func (f *Fleet) Close() {
	for _, h := range f.Hosts {
		h.http.Close()
		h.srv.Close()
	}
}

// Tally is the hosts' counters summed.
type Tally struct{ Facts, Conns, Resumed, Requests int64 }

// Counts sums the hosts' counters.
func (f *Fleet) Counts() Tally {
	var t Tally
	for _, h := range f.Hosts {
		t.Facts += h.Facts.Load()
		t.Conns += h.Conns.Load()
		t.Resumed += h.Resumed.Load()
		t.Requests += h.Requests.Load()
	}
	return t
}

// Since is what was counted after before.
func (t Tally) Since(before Tally) Tally {
	return Tally{t.Facts - before.Facts, t.Conns - before.Conns, t.Resumed - before.Resumed, t.Requests - before.Requests}
}

// HCL is a configuration of host blocks for the fleet, reached the way
// its listeners take: the default way in (HTTP, NTLM, encrypted
// messages), or HTTPS with NTLM.
func (f *Fleet) HCL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "variable \"sim_password\" {\n  sensitive = true\n  default   = %q\n}\n", f.opts.Password)
	https := ""
	if f.opts.HTTPS {
		https = fmt.Sprintf("\n    https    = true\n    ca_cert  = %q", f.CAFile)
	}
	for _, h := range f.Hosts {
		fmt.Fprintf(&b, `host %q {
  address = "127.0.0.1"
  labels  = { sim = "true" }
  winrm {
    port     = %d
    user     = %q
    password = var.sim_password%s
  }
}
`, h.Name, h.Port, f.opts.User, https)
	}
	return b.String()
}

// runner runs what gsd sends a host: the agent, in-process over the
// in-memory service manager, in place of "gsd-agent.exe serve"; the
// bootstrap, which finds the agent in place (it drops its input and
// confirms the SHA-256); any other command does nothing and succeeds.
type runner struct {
	root     string
	services *services
	// eventLog is the host's event log: native services' sources.
	eventLog agent.Handler
	host     *Host
}

func (r *runner) Start(c winecmd.Command) (winecmd.Process, error) {
	p := &process{done: make(chan struct{})}
	inR, inW := io.Pipe()
	p.stdin = inW
	if !strings.Contains(c.Line, " serve)") {
		params, err := bootstrap.Parse(c.Line)
		go func() {
			io.Copy(io.Discard, inR)
			if err == nil {
				fmt.Fprintf(c.Stdout, "%s%s\r\n", bootstrap.OKPrefix, params.SHA256)
			}
			p.finish(0)
		}()
		if err != nil {
			inW.Close()
		}
		return p, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	a := agent.New(agent.Options{Root: r.root, Services: r.services, Kinds: map[string]agent.Handler{protocol.KindEventLog: r.eventLog}})
	go func() {
		err := a.Serve(ctx, &factsCounter{r: inR, n: &r.host.Facts}, c.Stdout)
		inR.Close()
		code := 0
		if err != nil && !errors.Is(err, context.Canceled) {
			code = 1
		}
		p.finish(code)
	}()
	return p, nil
}

type process struct {
	stdin  io.WriteCloser
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	code   int
}

func (p *process) finish(code int) { p.once.Do(func() { p.code = code; close(p.done) }) }

func (p *process) Stdin() io.WriteCloser { return p.stdin }

func (p *process) Wait() int { <-p.done; return p.code }

func (p *process) Signal(winecmd.Signal) {
	if p.cancel != nil {
		p.cancel()
	}
	p.stdin.Close()
}

// factsCounter counts the facts requests that pass through it.
type factsCounter struct {
	r    io.Reader
	n    *atomic.Int64
	tail []byte
}

var factsOp = []byte(`"op":"facts"`)

func (c *factsCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	// Count across reads: keep the last few bytes.
	buf := append(c.tail, p[:n]...)
	c.n.Add(int64(bytes.Count(buf, factsOp)))
	if keep := len(factsOp) - 1; len(buf) > keep {
		c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
	} else {
		c.tail = buf
	}
	return n, err
}
