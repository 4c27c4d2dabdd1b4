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
	"syscall"
	"time"

	mz "github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
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
	// Dial, when set, opens the TCP connections in place of a net.Dialer
	// (tests slow connections down with it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Transport is one WinRM endpoint. It keeps idle shells for reuse; each
// running process holds its own shell for its whole life.
type Transport struct {
	name     string
	addr     string // host:port, for messages
	url      string
	path     string
	user     string
	password string
	auth     string
	https    bool
	// seal: every message is encrypted with the connection's session
	// key, NTLM's or Kerberos' ([MS-WSMV] 2.2.9.1), the default over
	// plain HTTP.
	seal    bool
	timeout time.Duration
	poll    time.Duration // the OperationTimeout gsd asks for
	tls     *tls.Config   // nil over plain HTTP
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	basic   *http.Client // auth = "basic"
	pool    *connPool    // the other schemes, which authenticate connections
	params  *mz.Parameters

	maxEnvelope atomic.Int64
	sent        atomic.Int64 // request bodies
	inputSent   atomic.Int64 // stdin bytes carried by Sends

	mu     sync.Mutex
	idle   []string // shell ids
	closed bool
	// peer is the last TLS handshake's view of the host; hostMaxTimeout
	// the host's MaxTimeoutms as Receives showed it, 0 until seen.
	peer           *peer
	hostMaxTimeout time.Duration
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
	auth := strings.ToLower(cfg.Auth)
	if auth == "" {
		// A host made in code without config.Load gets the language's
		// default: defaults live in config alone.
		auth = config.DefaultWinRMAuth
	}
	switch auth {
	case config.AuthBasic, config.AuthNTLM, config.AuthKerberos, config.AuthNegotiate:
	default:
		return nil, fmt.Errorf("host %s: WinRM auth %q is not supported (basic, ntlm, kerberos or negotiate)", host.Name, cfg.Auth)
	}
	if !cfg.HTTPS && auth == config.AuthBasic && !cfg.AllowUnencrypted {
		return nil, fmt.Errorf("host %s: Basic authentication over plain HTTP cannot encrypt messages; use NTLM (the default), HTTPS, or set allow_unencrypted = true", host.Name)
	}
	port := cfg.Port
	if port == 0 {
		port = config.DefaultWinRMHTTPPort
		if cfg.HTTPS {
			port = config.DefaultWinRMHTTPSPort
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
		path:     "/wsman",
		user:     cfg.User,
		password: cfg.Password.Value,
		auth:     auth,
		https:    cfg.HTTPS,
		seal:     auth != config.AuthBasic && !cfg.HTTPS && !cfg.AllowUnencrypted,
		timeout:  timeout,
		dial:     opts.Dial,
	}
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: opts.Resolver}).DialContext
	}
	if cfg.HTTPS {
		// The session cache lets a session's second connection (WinRS
		// keeps one for the Receive long poll and one for Sends) resume
		// the first one's TLS session instead of verifying the host's
		// certificate again.
		t.tls = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure, ClientSessionCache: tls.NewLRUClientSessionCache(4), ServerName: host.Address,
			VerifyConnection: t.notePeer}
		if cfg.CACert != "" && !cfg.Insecure {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return nil, fmt.Errorf("host %s: reading ca_cert: %w", host.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("host %s: ca_cert %s holds no PEM certificate", host.Name, cfg.CACert)
			}
			t.tls.RootCAs = pool
		}
	}
	if auth != config.AuthBasic {
		a, err := t.authenticator(host)
		if err != nil {
			return nil, err
		}
		t.pool = &connPool{t: t, auth: a, seal: t.seal}
	} else {
		t.basic = &http.Client{Transport: &http.Transport{
			DialContext:           t.dial,
			TLSClientConfig:       t.tls,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       idleReuse,
			// WinRM listeners speak HTTP/1.1 only.
			ForceAttemptHTTP2: false,
		}}
	}
	// Receive polls within OperationTimeout; half the timeout leaves the
	// host time to answer before gsd gives up on it.
	t.poll = max(timeout/2, time.Second)
	t.params = mz.NewParameters(fmt.Sprintf("PT%.3fS", t.poll.Seconds()), "en-US", responseEnvelopeSize)
	env := opts.MaxEnvelopeSize
	if env <= 0 {
		env = DefaultMaxEnvelopeSize
	}
	t.maxEnvelope.Store(int64(env))
	return t, nil
}

// Encrypted reports whether messages travel encrypted with the session
// key (plain HTTP), as opposed to inside TLS or in clear.
func (t *Transport) Encrypted() bool { return t.seal }

// BytesSent counts request bodies sent to the host, Receive polls
// included.
func (t *Transport) BytesSent() int64 { return t.sent.Load() }

// InputBytesSent counts the standard input the host accepted, before
// base64: what uploads cost, without the polling around them.
func (t *Transport) InputBytesSent() int64 { return t.inputSent.Load() }

// MaxEnvelopeSize is the request size the transport currently keeps to.
func (t *Transport) MaxEnvelopeSize() int { return int(t.maxEnvelope.Load()) }

// sendChunk is the most stdin bytes one Send carries: base64 turns 3
// bytes into 4, inside an envelope of MaxEnvelopeSize that also holds the
// SOAP headers and, when messages are encrypted, their framing.
func (t *Transport) sendChunk() int {
	room := t.MaxEnvelopeSize() - sendOverhead
	if t.seal {
		room -= sealed.Overhead(t.MaxEnvelopeSize(), t.sealHeaderSize())
	}
	return max(room/4*3, 3*1024)
}

func (t *Transport) service() string {
	if t.https {
		return "WinRM over HTTPS"
	}
	return "WinRM over HTTP"
}

// outgoing is a message ready to go: built, and when messages are
// sealed, sealed on the connection that will carry it. Sends make the
// next one ready while one travels.
type outgoing struct {
	step string
	body []byte
	m    *prepared // nil unless sealed ahead
}

// ready builds msg and, when messages are sealed, seals it for a
// connection.
func (t *Transport) ready(ctx context.Context, step string, msg *soap.SoapMessage) (*outgoing, error) {
	o := &outgoing{step: step, body: []byte(msg.String())}
	msg.Free()
	if t.seal {
		ctx, cancel := context.WithTimeout(ctx, 2*t.timeout)
		defer cancel()
		m, err := t.pool.prepare(ctx, o.body)
		if err != nil {
			return nil, t.requestError(ctx, step, err)
		}
		o.m = m
	}
	return o, nil
}

// discard gives up a message made ready but not sent.
func (t *Transport) discard(o *outgoing) {
	if o != nil && o.m != nil {
		t.pool.discard(o.m)
	}
}

// exchange sends one message body and returns the host's answer.
func (t *Transport) exchange(ctx context.Context, o *outgoing) (*reply, error) {
	if t.pool != nil {
		m := o.m
		o.m = nil
		return t.pool.exchange(ctx, o.body, m)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(o.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", soapContentType)
	req.SetBasicAuth(t.user, t.password)
	resp, err := t.basic.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// post sends one message and returns the response body. step names the
// WS-Management operation for messages.
func (t *Transport) post(ctx context.Context, step string, msg *soap.SoapMessage) ([]byte, error) {
	o, err := t.ready(ctx, step, msg)
	if err != nil {
		return nil, err
	}
	return t.send(ctx, o)
}

// send carries a message made ready and returns the response body.
func (t *Transport) send(ctx context.Context, o *outgoing) ([]byte, error) {
	// One deadline covers the whole exchange: connecting, authenticating,
	// a Receive's wait of up to half the timeout, and the body.
	ctx, cancel := context.WithTimeout(ctx, 2*t.timeout)
	defer cancel()
	t.sent.Add(int64(len(o.body)))
	r, err := t.exchange(ctx, o)
	if err != nil {
		return nil, t.requestError(ctx, o.step, err)
	}
	switch r.status {
	case http.StatusOK:
		return r.body, nil
	case http.StatusUnauthorized:
		return nil, t.unauthorized(r.header)
	}
	if f := parseFault(r.body); f != nil {
		if f.WSManCode == codeAccessDenied {
			return nil, transport.Errorf(transport.ErrAuth, "%s let user %q in but refused it a shell (%s): gsd needs an administrator. Add %q to the host's Administrators group; a local account other than the built-in Administrator also needs LocalAccountTokenFilterPolicy = 1, or UAC strips its rights on network logons (docs/hosts.md)",
				t.addr, t.user, strings.TrimSpace(f.Reason), t.user)
		}
		return nil, f
	}
	text := strings.TrimSpace(string(r.body))
	if len(text) > 500 {
		text = text[:500] + "…"
	}
	if text == "" {
		text = http.StatusText(r.status)
	}
	return nil, fmt.Errorf("%s answered %s with HTTP %d: %s", t.addr, o.step, r.status, text)
}

// unauthorized phrases a 401 to a message.
func (t *Transport) unauthorized(h http.Header) error {
	offers := schemes(h)
	switch {
	case t.auth == "basic" && !strings.Contains(offers, "Basic"):
		return transport.Errorf(transport.ErrAuth, `%s does not accept Basic authentication (it offers %s; Basic is off on a stock Windows Server): remove auth = "basic" so gsd uses NTLM, or turn Basic on there: winrm set winrm/config/service/auth @{Basic="true"}`,
			t.addr, offers)
	case t.auth == "basic" && !t.https:
		return transport.Errorf(transport.ErrAuth, `%s refused user %q with Basic authentication over plain HTTP (HTTP 401): the password is wrong, the account may not use WinRM (docs/hosts.md), or the host refuses unencrypted messages (AllowUnencrypted = false, Windows' default); NTLM, the default auth, encrypts them`,
			t.addr, t.user)
	case t.auth == "basic":
		return transport.Errorf(transport.ErrAuth, `%s refused user %q with Basic authentication (HTTP 401): the password is wrong, or the account may not use WinRM; a local administrator other than the built-in Administrator needs LocalAccountTokenFilterPolicy = 1 (docs/hosts.md)`,
			t.addr, t.user)
	case !t.seal && !t.https:
		return transport.Errorf(transport.ErrAuth, `%s accepted user %q but refuses unencrypted messages (AllowUnencrypted = false, Windows' default): remove allow_unencrypted so gsd encrypts every message with the session key, or use HTTPS`,
			t.addr, t.who())
	}
	return transport.Errorf(transport.ErrAuth, "%s refused a message from user %q after %s authentication succeeded (HTTP 401; the host offers %s)", t.addr, t.who(), t.mechanismName(), offers)
}

// who names the account gsd logs in as: the configured user, or for
// Kerberos from a ticket cache, the cache's principal.
func (t *Transport) who() string {
	if t.pool == nil {
		return t.user
	}
	return t.pool.auth.describe().account
}

// mechanismName is the scheme that authenticated the connections.
func (t *Transport) mechanismName() string {
	if t.pool == nil {
		return "Basic"
	}
	name, _, _ := strings.Cut(t.pool.auth.describe().auth, " as ")
	return name
}

// handshakeFailure phrases an NTLM handshake the host did not complete.
func (t *Transport) handshakeFailure(h *handshakeError) error {
	if errors.Is(h, errRefused) {
		return transport.Errorf(transport.ErrAuth, `%s refused user %q (HTTP 401 after NTLM authentication): the user name or password is wrong, or the account may not use WinRM. If the password is right and %q is a local administrator other than the built-in Administrator, UAC strips its rights on network logons: set LocalAccountTokenFilterPolicy = 1 on the host, or use a domain account (docs/hosts.md)`,
			t.addr, t.user, t.user)
	}
	if h.status == http.StatusUnauthorized && (strings.Contains(h.offers, "Negotiate") || strings.Contains(h.offers, "Kerberos")) {
		// A host that offers Negotiate but does not challenge NTLM's
		// NEGOTIATE refuses NTLM itself: Windows does so when a policy
		// restricts NTLM, and for Protected Users.
		return transport.Errorf(transport.ErrAuth, `%s refuses NTLM (it answered gsd's NTLM NEGOTIATE with a plain 401 and offers %s): a policy restricts NTLM there ("Network security: Restrict NTLM"), or the account is in Protected Users. Use Kerberos: set auth = "kerberos" and log in with kinit, or give user with keytab or password (README: Kerberos)`,
			t.addr, h.offers)
	}
	if h.status == http.StatusUnauthorized {
		return transport.Errorf(transport.ErrAuth, `%s does not offer NTLM (it offers %s): enable Negotiate there (winrm set winrm/config/service/auth @{Negotiate="true"}), or set auth = "basic" over HTTPS; gsd never sends the password as Basic when auth = "ntlm"`,
			t.addr, h.offers)
	}
	hint := ""
	if h.status == http.StatusBadRequest && !t.https {
		hint = "; if that port is an HTTPS listener, set https = true"
	}
	return fmt.Errorf("%s answered gsd's NTLM NEGOTIATE with HTTP %d instead of a challenge%s", t.addr, h.status, hint)
}

// requestError phrases a failed request.
func (t *Transport) requestError(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", step, ctx.Err())
	}
	var (
		h  *handshakeError
		k  *kerberos.Error
		fb *fallbackError
	)
	switch {
	case errors.As(err, &fb):
		phrased := t.requestError(ctx, step, fb.ntlm)
		var kk *kerberos.Error
		if errors.As(fb.kerberos, &kk) && errors.Is(phrased, transport.ErrAuth) {
			return transport.Errorf(transport.ErrAuth, "%v. (Negotiate tried NTLM because %v)", phrased, t.kerberosFailure(kk))
		}
		return phrased
	case errors.As(err, &h) && errors.Is(h, errKerberosRefused):
		return t.kerberosHandshakeFailure(h)
	case errors.As(err, &h):
		return t.handshakeFailure(h)
	case errors.As(err, &k):
		return t.kerberosFailure(k)
	case errors.Is(err, errNoAPRep):
		return transport.Errorf(transport.ErrTrust, "%s accepted gsd's Kerberos ticket without proving it holds the service's key (no AP-REP in its answer): gsd requires mutual authentication and sends such a host nothing. Something between gsd and the host may be answering in its place", t.addr)
	case errors.Is(err, errUnsealedAnswer):
		return transport.Errorf(transport.ErrTrust, "%s answered an encrypted message in clear text; gsd refuses such an answer (something between gsd and the host may have changed it)", t.addr)
	case errors.Is(err, syscall.ECONNREFUSED) && t.https:
		return fmt.Errorf("%s: %w", step, transport.Errorf(transport.ErrUnreachable, "connection refused by %s: no HTTPS listener there. A stock Windows Server listens on HTTP (5985) only: remove https = true to use it (gsd then encrypts every message), or add an HTTPS listener (docs/hosts.md)", t.addr))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: %w", step, transport.Errorf(transport.ErrUnreachable, "connection refused by %s: no WinRM listener there. Run Enable-PSRemoting (or winrm quickconfig) on the host, open the port in its firewall, and check the port; a host with only an HTTPS listener needs https = true", t.addr))
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
	case errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 && errors.As(err, &hostname):
		cert := verify.UnverifiedCertificates[0]
		names := append([]string(nil), cert.DNSNames...)
		for _, ip := range cert.IPAddresses {
			names = append(names, ip.String())
		}
		holds := "no name"
		if len(names) > 0 {
			holds = strings.Join(names, ", ")
		}
		return transport.Errorf(transport.ErrTrust, "the certificate of %s is not valid for this address: it holds %s, not %s (subject %q, issuer %q, SHA-256 fingerprint %s). Set address to a name the certificate holds, or give the host's HTTPS listener a certificate for %s",
			t.addr, holds, hostname.Host, cert.Subject.String(), cert.Issuer.String(), fingerprint(cert.Raw), hostname.Host)
	case errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0:
		cert := verify.UnverifiedCertificates[0]
		why := "is signed by an unknown authority"
		if !errors.As(err, &unknown) {
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
		t.CloseIdleConnections()
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
func (t *Transport) CloseIdleConnections() {
	if t.pool != nil {
		t.pool.closeIdle()
		return
	}
	t.basic.CloseIdleConnections()
}

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
	t.CloseIdleConnections()
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
