package winrm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/go-ntlmssp"
	mz "github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// DefaultMaxEnvelopeSize is Windows' default MaxEnvelopeSizekb (500) in
// bytes: the largest request a host accepts unless configured otherwise.
const DefaultMaxEnvelopeSize = 500 * 1024

// responseEnvelopeSize is the MaxEnvelopeSize gsd asks responses to fit
// in: the value every WinRM client sends, accepted by every Windows
// version. Output is small (agent events), so larger buys nothing.
const responseEnvelopeSize = 153600

// sendOverhead is room for a Send's SOAP headers and the stream element,
// which take about 1.5 KB.
const sendOverhead = 4096

// Options are settings beyond the configuration.
type Options struct {
	// MaxEnvelopeSize is the host's request limit in bytes
	// (DefaultMaxEnvelopeSize when 0). A host that rejects a Send as too
	// large gets smaller ones from then on, so a wrong guess costs one
	// round trip.
	MaxEnvelopeSize int
	// Resolver resolves the host's address (net.DefaultResolver when nil).
	Resolver *net.Resolver
}

// Transport is one WinRM endpoint. It keeps idle shells for reuse; each
// running process holds its own shell for its whole life.
type Transport struct {
	name     string
	addr     string // host:port, for messages
	url      string
	user     string
	password string
	auth     string
	timeout  time.Duration
	http     *http.Client
	params   *mz.Parameters

	maxEnvelope atomic.Int64
	sent        atomic.Int64 // request bodies
	inputSent   atomic.Int64 // stdin bytes carried by Sends

	mu     sync.Mutex
	idle   []string // shell ids
	closed bool
	// orphans are shells gsd could not delete because the host did not
	// answer. Their commands may still run (an agent holding the host
	// lock), so they are deleted before the next command starts.
	orphans []string
}

// New returns a transport for host, whose WinRM block must be set. It
// does not connect; the first command does.
func New(host *config.Host, opts Options) (*Transport, error) {
	cfg := host.WinRM
	if cfg == nil {
		return nil, fmt.Errorf("host %s has no winrm block", host.Name)
	}
	if !cfg.HTTPS && !cfg.AllowUnencrypted {
		return nil, fmt.Errorf("host %s: WinRM over plain HTTP sends commands and files unprotected; use HTTPS, or set allow_unencrypted = true", host.Name)
	}
	auth := strings.ToLower(cfg.Auth)
	if auth == "" {
		// A host made in code without config.Load gets the language's
		// default: defaults live in config alone.
		auth = config.DefaultWinRMAuth
	}
	if auth != "basic" && auth != "ntlm" {
		return nil, fmt.Errorf("host %s: WinRM auth %q is not supported (basic or ntlm)", host.Name, cfg.Auth)
	}
	port := cfg.Port
	if port == 0 {
		port = config.DefaultWinRMHTTPSPort
		if !cfg.HTTPS {
			port = config.DefaultWinRMHTTPPort
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultWinRMTimeout
	}
	addr := net.JoinHostPort(host.Address, strconv.Itoa(port))
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https"
	}
	t := &Transport{
		name:     host.Name,
		addr:     addr,
		url:      scheme + "://" + addr + "/wsman",
		user:     cfg.User,
		password: cfg.Password.Value,
		auth:     auth,
		timeout:  timeout,
	}
	// The session cache lets a session's second connection (WinRS keeps
	// one for the Receive long poll and one for Sends) resume the first
	// one's TLS session instead of verifying the host's certificate again.
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	if cfg.HTTPS && cfg.CACert != "" && !cfg.Insecure {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("host %s: reading ca_cert: %w", host.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("host %s: ca_cert %s holds no PEM certificate", host.Name, cfg.CACert)
		}
		tlsConfig.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: opts.Resolver}
	newTransport := func(maxConns int) *http.Transport {
		return &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			MaxConnsPerHost:       maxConns,
			IdleConnTimeout:       90 * time.Second,
			// WinRM listeners speak HTTP/1.1 only.
			ForceAttemptHTTP2: false,
		}
	}
	var rt http.RoundTripper = newTransport(0)
	if auth == "ntlm" {
		// Each exchange on a connection of its own: see pinnedPool.
		rt = newPinnedPool(4, func() (http.RoundTripper, *http.Transport) {
			tr := newTransport(1)
			return ntlmssp.Negotiator{RoundTripper: noBasic{tr}}, tr
		})
	}
	t.http = &http.Client{Transport: rt}
	// Receive polls within OperationTimeout; half the timeout leaves the
	// host time to answer before gsd gives up on it.
	poll := max(timeout/2, time.Second)
	t.params = mz.NewParameters(fmt.Sprintf("PT%.3fS", poll.Seconds()), "en-US", responseEnvelopeSize)
	env := opts.MaxEnvelopeSize
	if env <= 0 {
		env = DefaultMaxEnvelopeSize
	}
	t.maxEnvelope.Store(int64(env))
	return t, nil
}

// noBasic stands under the NTLM negotiator, which falls back to sending
// the password as Basic when a host offers only Basic. With auth = "ntlm"
// the password must never cross the network that way.
type noBasic struct{ next http.RoundTripper }

// errNoNTLM is what a host that offers no NTLM gets instead of the
// password.
var errNoNTLM = errors.New(`the host offers only Basic authentication, and gsd does not send the password as Basic when auth = "ntlm"; enable Negotiate/NTLM on the host or set auth = "basic"`)

func (n noBasic) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.Header.Get("Authorization"), "Basic ") {
		return nil, errNoNTLM
	}
	return n.next.RoundTrip(req)
}

// BytesSent counts request bodies sent to the host, Receive polls
// included.
func (t *Transport) BytesSent() int64 { return t.sent.Load() }

// InputBytesSent counts the standard input the host accepted, before
// base64: what uploads cost, without the polling around them.
func (t *Transport) InputBytesSent() int64 { return t.inputSent.Load() }

// MaxEnvelopeSize is the request size the transport currently keeps to.
func (t *Transport) MaxEnvelopeSize() int { return int(t.maxEnvelope.Load()) }

// sendChunk is the most stdin bytes one Send carries: base64 turns 3
// bytes into 4, inside an envelope of MaxEnvelopeSize.
func (t *Transport) sendChunk() int {
	return max((t.MaxEnvelopeSize()-sendOverhead)/4*3, 3*1024)
}

func (t *Transport) service() string {
	if strings.HasPrefix(t.url, "https:") {
		return "WinRM over HTTPS"
	}
	return "WinRM over HTTP"
}

// post sends one message and returns the response body. step names the
// WS-Management operation for messages.
func (t *Transport) post(ctx context.Context, step string, msg *soap.SoapMessage) ([]byte, error) {
	body := msg.String()
	msg.Free()
	// The HTTP client's timeouts end at the response headers; a host that
	// stalls while the body moves would hold gsd forever. One deadline
	// covers the whole exchange: connecting, a Receive's wait of up to
	// half the timeout, and the body.
	ctx, cancel := context.WithTimeout(ctx, 2*t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(t.user, t.password)
	t.sent.Add(int64(len(body)))
	resp, err := t.http.Do(req)
	if err != nil {
		return nil, t.requestError(ctx, step, err)
	}
	defer resp.Body.Close()
	// Responses fit the envelope size gsd asked for; a little slack
	// covers hosts that count differently.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4*responseEnvelopeSize))
	if err != nil {
		return nil, t.requestError(ctx, step, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return b, nil
	case resp.StatusCode == http.StatusUnauthorized:
		scheme := "Basic"
		if t.auth == "ntlm" {
			scheme = "NTLM"
		}
		offered := strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
		return nil, transport.Errorf(transport.ErrAuth, "%s refused user %q with %s authentication (HTTP 401; the host offers %s): check the user and password, and that the host allows %s (winrm get winrm/config/service/auth)",
			t.addr, t.user, scheme, schemes(offered), scheme)
	}
	if f := parseFault(b); f != nil {
		return nil, f
	}
	text := strings.TrimSpace(string(b))
	if len(text) > 500 {
		text = text[:500] + "…"
	}
	if text == "" {
		text = http.StatusText(resp.StatusCode)
	}
	return nil, fmt.Errorf("%s answered %s with HTTP %d: %s", t.addr, step, resp.StatusCode, text)
}

// schemes lists the scheme names of WWW-Authenticate values, without
// their tokens.
func schemes(header string) string {
	var names []string
	for _, v := range strings.Split(header, ",") {
		if f := strings.Fields(v); len(f) > 0 && !strings.Contains(f[0], "=") {
			names = append(names, f[0])
		}
	}
	if len(names) == 0 {
		return "no scheme"
	}
	return strings.Join(names, ", ")
}

// requestError phrases a failed request.
func (t *Transport) requestError(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", step, ctx.Err())
	}
	// The URL is the transport's own; the cause is what matters.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0:
		cert := verify.UnverifiedCertificates[0]
		why := "is signed by an unknown authority"
		if errors.As(err, &hostname) {
			why = "is not valid for this address (" + hostname.Error() + ")"
		} else if !errors.As(err, &unknown) {
			why = "is not trusted (" + verify.Err.Error() + ")"
		}
		return transport.Errorf(transport.ErrTrust, "the certificate of %s %s: subject %q, issuer %q, SHA-256 fingerprint %s. If it is the host's certificate, set ca_cert to the CA that issued it (or, for testing only, insecure = true)",
			t.addr, why, cert.Subject.String(), cert.Issuer.String(), fingerprint(cert.Raw))
	case isTLSRecordError(err) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return transport.Errorf(transport.ErrUnreachable, "%s does not speak TLS: it may be a plain-HTTP listener (port 5985); check https and port", t.addr)
	}
	err = transport.NetError(err, t.addr, t.service(), t.timeout)
	if errors.Is(err, transport.ErrBroken) {
		// Whatever broke this connection may have broken the idle ones;
		// a retry should start on fresh connections.
		t.http.CloseIdleConnections()
	}
	return fmt.Errorf("%s: %w", step, err)
}

func isTLSRecordError(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// fingerprint is the colon-separated SHA-256 of a DER certificate, as
// certificate viewers show it.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b bytes.Buffer
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// CloseIdleConnections drops kept-alive connections, so the next
// request connects afresh.
func (t *Transport) CloseIdleConnections() { t.http.CloseIdleConnections() }

// Close deletes the idle shells and ends the connections. Processes
// still running are not waited for.
func (t *Transport) Close() error {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	t.mu.Unlock()
	for _, id := range idle {
		_ = t.deleteShell(id)
	}
	t.sweepOrphans()
	t.http.CloseIdleConnections()
	return nil
}

// deleteShell ends a shell and every command in it. A shell the host no
// longer knows counts as deleted.
func (t *Transport) deleteShell(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	_, err := t.post(ctx, "deleting a shell", mz.NewDeleteShellRequest(t.url, id, t.params))
	var f *Fault
	if errors.As(err, &f) {
		return nil
	}
	return err
}

// sweepOrphans deletes the shells an earlier failure left behind.
func (t *Transport) sweepOrphans() {
	t.mu.Lock()
	orphans := t.orphans
	t.orphans = nil
	t.mu.Unlock()
	for _, id := range orphans {
		if err := t.deleteShell(id); err != nil {
			t.mu.Lock()
			t.orphans = append(t.orphans, id)
			t.mu.Unlock()
		}
	}
}

// shell returns an idle shell (reused = true) or creates one.
func (t *Transport) shell(ctx context.Context) (id string, reused bool, err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return "", false, errors.New("the transport is closed")
	}
	if n := len(t.idle); n > 0 {
		id := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return id, true, nil
	}
	t.mu.Unlock()
	t.sweepOrphans()
	b, err := t.post(ctx, "creating a shell", mz.NewOpenShellRequest(t.url, t.params))
	if err != nil {
		return "", false, err
	}
	id, err = parseShellID(b)
	if err != nil || id == "" {
		return "", false, fmt.Errorf("%s: no ShellId in the Create response (%v)", t.addr, err)
	}
	return id, false, nil
}

func (t *Transport) release(id string, healthy bool) {
	t.mu.Lock()
	if healthy && !t.closed {
		t.idle = append(t.idle, id)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	if err := t.deleteShell(id); err != nil {
		t.mu.Lock()
		t.orphans = append(t.orphans, id)
		t.mu.Unlock()
	}
}
