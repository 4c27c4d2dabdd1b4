package winrm

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bodgit/ntlmssp"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
)

// NTLM authenticates a TCP connection, not a request, and WinRM message
// encryption ties each message to the connection's context: its keys,
// RC4 streams and sequence numbers. So the NTLM path owns its
// connections instead of going through net/http's pool. A connection is
// dialed, authenticated with two empty requests (NEGOTIATE, then
// AUTHENTICATE), and then carries one exchange at a time, each request
// written and its answer read by the same goroutine.
//
// net/http could not be made to keep a handshake on one connection:
// besides sharing idle connections between goroutines, its Transport
// drops a connection whenever an answer arrives before its writer
// goroutine has reported the request written within 50 ms
// (maxWriteWaitBeforeConnReuse). On a loaded machine that happened
// between the challenge and the answer, which then went out on a fresh
// connection the host had never challenged, and the host said 401.
type ntlmPool struct {
	t    *Transport
	seal bool // encrypt every message with the session key
	cbt  bool // bind the exchange to the TLS certificate

	mu   sync.Mutex
	idle []*ntlmConn
}

// maxIdleConns is how many authenticated connections wait for reuse; an
// agent session needs two (the Receive long poll and the Sends).
const maxIdleConns = 4

// idleReuse is how long an idle connection is trusted to be open: well
// under the 2 minutes after which Windows' HTTP.sys closes one.
const idleReuse = 60 * time.Second

type ntlmConn struct {
	conn      net.Conn
	br        *bufio.Reader
	session   *ntlmssp.SecuritySession // nil unless sealing
	idleSince time.Time
}

// reply is a host's answer, its body unsealed.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// prepared is a message made ready on the connection that will carry it:
// sealed for it, when the pool seals. Sealing takes the connection's
// next sequence number, so a prepared message is either sent or its
// connection closed.
type prepared struct {
	c     *ntlmConn
	fresh bool   // c was authenticated for this message
	wire  []byte // the body as sent: sealed and framed when the pool seals
}

// prepare takes a connection (authenticating a new one if none is idle)
// and seals body for it.
func (p *ntlmPool) prepare(ctx context.Context, body []byte) (*prepared, error) {
	c, fresh, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	m := &prepared{c: c, fresh: fresh, wire: body}
	if p.seal {
		m.wire, err = sealed.Frame(body, sealed.SignatureSize, func(b []byte) ([]byte, error) {
			out, sig, err := c.session.Wrap(b)
			copy(b, out)
			return sig, err
		})
		if err != nil {
			c.conn.Close()
			return nil, err
		}
	}
	return m, nil
}

// discard gives up a prepared message that was never sent: its
// connection's sealing ran ahead of the host's, so the connection goes.
func (p *ntlmPool) discard(m *prepared) {
	if m != nil {
		m.c.conn.Close()
	}
}

// exchange sends one message, prepared ahead or not, and returns the
// host's answer. A message the host answers with 401 on a kept
// connection (it dropped the connection's context) is sent once more on
// a newly authenticated one: a 401 means the host did nothing with it.
func (p *ntlmPool) exchange(ctx context.Context, body []byte, m *prepared) (*reply, error) {
	for attempt := 0; ; attempt++ {
		if m == nil {
			var err error
			if m, err = p.prepare(ctx, body); err != nil {
				return nil, err
			}
		}
		r, keep, err := p.send(ctx, m)
		c := m.c
		if err != nil {
			c.conn.Close()
			return nil, err
		}
		if r.status == http.StatusUnauthorized && !m.fresh && attempt == 0 {
			c.conn.Close()
			m = nil
			continue
		}
		if keep {
			p.put(c)
		} else {
			c.conn.Close()
		}
		return r, nil
	}
}

// get returns an idle connection that is still open, or a new one.
func (p *ntlmPool) get(ctx context.Context) (c *ntlmConn, fresh bool, err error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c = p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if time.Since(c.idleSince) < idleReuse && stillOpen(c) {
			return c, false, nil
		}
		c.conn.Close()
	}
	c, err = p.dial(ctx)
	return c, true, err
}

// stillOpen reports whether an idle connection can carry a request: the
// host has neither closed it nor sent anything unasked.
func stillOpen(c *ntlmConn) bool {
	_ = c.conn.SetReadDeadline(time.Now())
	_, err := c.br.Peek(1)
	_ = c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *ntlmPool) put(c *ntlmConn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < maxIdleConns {
		p.idle = append(p.idle, c)
		return
	}
	c.conn.Close()
}

func (p *ntlmPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
}

// dial connects and authenticates. Errors are the transport's phrasing
// of what went wrong.
func (p *ntlmPool) dial(ctx context.Context) (*ntlmConn, error) {
	t := p.t
	conn, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	if t.tls != nil {
		tc := tls.Client(conn, t.tls)
		hctx, cancel := context.WithTimeout(ctx, t.timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, err
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			cert = certs[0]
		}
		conn = tc
	}
	c := &ntlmConn{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	if err := p.authenticate(ctx, c, cert); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Handshake failures, phrased by the transport.
var (
	// errNoNegotiate: the host's 401 offers no Negotiate.
	errNoNegotiate = errors.New("no Negotiate")
	// errRefused: the host refused the AUTHENTICATE message.
	errRefused = errors.New("refused")
)

// handshakeError carries the host's answer to a failed handshake leg.
type handshakeError struct {
	kind   error
	status int
	offers string // WWW-Authenticate schemes
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("NTLM handshake: HTTP %d (the host offers %s)", e.status, e.offers)
}
func (e *handshakeError) Unwrap() error { return e.kind }

// authenticate runs NTLM's two legs on c with empty bodies, as pywinrm
// does to set up encryption, so no message is ever sent twice.
func (p *ntlmPool) authenticate(ctx context.Context, c *ntlmConn, cert *x509.Certificate) error {
	t := p.t
	domain, user := splitUser(t.user)
	client, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, t.password), ntlmssp.SetDomain(domain),
		ntlmssp.SetVersion(&ntlmssp.Version{ProductMajorVersion: 10, NTLMRevisionCurrent: ntlmssp.NTLMSSPRevisionW2K3}))
	if err != nil {
		return err
	}
	negotiate, err := client.Authenticate(nil, nil)
	if err != nil {
		return err
	}
	r, _, err := p.roundTrip(ctx, c, negotiateHeader(negotiate), "", nil)
	if err != nil {
		return err
	}
	challenge, ok := negotiateToken(r.header)
	if r.status != http.StatusUnauthorized || !ok || len(challenge) == 0 {
		return &handshakeError{kind: errNoNegotiate, status: r.status, offers: schemes(r.header)}
	}
	var bindings *ntlmssp.ChannelBindings
	if p.cbt && cert != nil {
		bindings = channelBindings(cert)
	}
	answer, err := client.Authenticate(challenge, bindings)
	if err != nil {
		return fmt.Errorf("the host's NTLM challenge: %w", err)
	}
	r, _, err = p.roundTrip(ctx, c, negotiateHeader(answer), "", nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return &handshakeError{kind: errRefused, status: r.status, offers: schemes(r.header)}
	}
	if p.seal {
		if c.session = client.SecuritySession(); c.session == nil {
			return errors.New("the host did not agree to NTLM sealing, which message encryption needs")
		}
	}
	return nil
}

func negotiateHeader(token []byte) string {
	return "Negotiate " + base64.StdEncoding.EncodeToString(token)
}

// negotiateToken is the token of the host's Negotiate (or NTLM) offer.
func negotiateToken(h http.Header) ([]byte, bool) {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, data, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM") {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
			return b, err == nil
		}
	}
	return nil, false
}

// splitUser separates DOMAIN\user; user@domain is passed whole, as
// Windows takes a UPN as the user name.
func splitUser(u string) (domain, user string) {
	if d, name, ok := strings.Cut(u, `\`); ok {
		return d, name
	}
	return "", u
}

// channelBindings is RFC 5929's tls-server-end-point binding for cert: its
// hash with the signature's algorithm, SHA-256 for MD5 and SHA-1.
func channelBindings(cert *x509.Certificate) *ntlmssp.ChannelBindings {
	h := crypto.SHA256
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	}
	d := h.New()
	d.Write(cert.Raw)
	return &ntlmssp.ChannelBindings{ApplicationData: append([]byte("tls-server-end-point:"), d.Sum(nil)...)}
}

// send carries one prepared message on its authenticated connection and
// unseals the answer.
func (p *ntlmPool) send(ctx context.Context, m *prepared) (*reply, bool, error) {
	c := m.c
	contentType := soapContentType
	if p.seal {
		contentType = sealed.ContentType
	}
	r, keep, err := p.roundTrip(ctx, c, "", contentType, m.wire)
	if err != nil || !p.seal || r.status == http.StatusUnauthorized {
		return r, keep, err
	}
	if !sealed.IsEncrypted(r.header.Get("Content-Type")) {
		if len(r.body) == 0 {
			return r, keep, nil
		}
		return nil, false, errUnsealedAnswer
	}
	sig, msg, err := sealed.Parse(r.body)
	if err != nil {
		return nil, false, err
	}
	plain, err := c.session.Unwrap(msg, sig)
	if err != nil {
		return nil, false, fmt.Errorf("the host's encrypted answer does not verify: %w", err)
	}
	r.body = plain
	return r, keep, nil
}

// errUnsealedAnswer: the host answered an encrypted message in clear.
var errUnsealedAnswer = errors.New("unsealed answer")

const soapContentType = "application/soap+xml;charset=UTF-8"

// maxReply bounds an answer's body: responses fit the envelope size gsd
// asks for, and a little slack covers framing and hosts that count
// differently.
const maxReply = 4 * responseEnvelopeSize

// roundTrip writes one request on c and reads its answer. keep reports
// whether c can carry another.
func (p *ntlmPool) roundTrip(ctx context.Context, c *ntlmConn, authorization, contentType string, body []byte) (*reply, bool, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(d)
	}
	// Cancelling unblocks the read or write in flight; the connection is
	// then closed by the caller.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gsd\r\nContent-Length: %d\r\n", p.t.path, p.t.addr, len(body))
	if contentType != "" {
		head.WriteString("Content-Type: " + contentType + "\r\n")
	}
	if authorization != "" {
		head.WriteString("Authorization: " + authorization + "\r\n")
	}
	head.WriteString("\r\n")
	bufs := net.Buffers{head.Bytes(), body}
	if _, err := bufs.WriteTo(c.conn); err != nil {
		return nil, false, p.ioError(ctx, err)
	}
	// The answer's headers are due within the timeout (a Receive waits
	// half of it on the host); the body then has what is left of ctx.
	headers := time.Now().Add(p.t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(headers) {
		headers = d
	}
	_ = c.conn.SetReadDeadline(headers)
	if err := ctx.Err(); err != nil {
		// Cancelled before the deadline above replaced the one that
		// would have stopped the read.
		return nil, false, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodPost})
	if err != nil {
		return nil, false, p.ioError(ctx, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.conn.SetReadDeadline(d)
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, false, p.ioError(ctx, err)
	}
	if len(b) > maxReply {
		return nil, false, fmt.Errorf("%s sent an answer of over %d bytes", p.t.addr, maxReply)
	}
	_ = c.conn.SetDeadline(time.Time{})
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, !resp.Close, nil
}

func (p *ntlmPool) ioError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// schemes lists the scheme names a host offers, without their tokens.
func schemes(h http.Header) string {
	var names []string
	for _, v := range h.Values("WWW-Authenticate") {
		for _, part := range strings.Split(v, ",") {
			if f := strings.Fields(part); len(f) > 0 && !strings.Contains(f[0], "=") {
				names = append(names, f[0])
			}
		}
	}
	if len(names) == 0 {
		return "no scheme"
	}
	return strings.Join(names, ", ")
}
