package winrm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
)

// NTLM and Kerberos authenticate a TCP connection, not a request, and
// WinRM message encryption ties each message to the connection's
// security context: its keys, cipher state and sequence numbers. So
// these schemes own their connections instead of going through
// net/http's pool. A connection is dialed, authenticated with empty
// requests (NTLM: NEGOTIATE, then AUTHENTICATE; Kerberos: the AP-REQ,
// answered by the AP-REP), and then carries one exchange at a time, each
// request written and its answer read by the same goroutine.
//
// net/http could not be made to keep a handshake on one connection:
// besides sharing idle connections between goroutines, its Transport
// drops a connection whenever an answer arrives before its writer
// goroutine has reported the request written within 50 ms
// (maxWriteWaitBeforeConnReuse). On a loaded machine that happened
// between the challenge and the answer, which then went out on a fresh
// connection the host had never challenged, and the host said 401.
type connPool struct {
	t    *Transport
	auth authenticator
	seal bool // encrypt every message with the session key

	mu   sync.Mutex
	idle []*authConn
}

// authenticator sets up a connection's security context: NTLM,
// Kerberos, or Negotiate's choice between them.
type authenticator interface {
	// authenticate runs the handshake on c, a new connection (cert is
	// the host's certificate over HTTPS, nil over HTTP), and returns the
	// context that seals its messages.
	authenticate(ctx context.Context, p *connPool, c *authConn, cert *x509.Certificate) (securityContext, error)
	// describe names the mechanism and identity, for gsd hosts check.
	describe() mechanism
}

// mechanism is how a connection was authenticated, as hosts check
// reports it.
type mechanism struct {
	auth       string // e.g. "Kerberos as gsd@CORP.EXAMPLE for HTTP/web1.corp.example"
	account    string // who logs in: "CORP\deploy", "gsd@CORP.EXAMPLE"
	sealedWith string // e.g. "the Kerberos session key (aes256-cts-hmac-sha1-96)"
	bound      string // over HTTPS: how the handshake is tied to the TLS channel
	notes      []string
}

// securityContext protects the messages of one authenticated
// connection ([MS-WSMV] 2.2.9.1): Frame seals a message into the
// multipart body sent (sealed.Frame's layout, its header or signature
// first), Open checks and opens such a body from the host. Each takes
// the context's next sequence number, so messages go and come in order.
type securityContext interface {
	Frame(msg []byte) ([]byte, error)
	Open(body []byte) ([]byte, error)
}

// maxIdleConns is how many authenticated connections wait for reuse; an
// agent session needs two (the Receive long poll and the Sends).
const maxIdleConns = 4

// idleReuse is how long an idle connection is trusted to be open: well
// under the 2 minutes after which Windows' HTTP.sys closes one.
const idleReuse = 60 * time.Second

type authConn struct {
	conn      net.Conn
	br        *bufio.Reader
	sec       securityContext // nil unless sealing
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
	c     *authConn
	fresh bool   // c was authenticated for this message
	wire  []byte // the body as sent: sealed and framed when the pool seals
}

// prepare takes a connection (authenticating a new one if none is idle)
// and seals body for it.
func (p *connPool) prepare(ctx context.Context, body []byte) (*prepared, error) {
	c, fresh, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	m := &prepared{c: c, fresh: fresh, wire: body}
	if p.seal {
		m.wire, err = c.sec.Frame(body)
		if err != nil {
			c.conn.Close()
			return nil, err
		}
	}
	return m, nil
}

// discard gives up a prepared message that was never sent: its
// connection's sealing ran ahead of the host's, so the connection goes.
func (p *connPool) discard(m *prepared) {
	if m != nil {
		m.c.conn.Close()
	}
}

// exchange sends one message, prepared ahead or not, and returns the
// host's answer. A message the host answers with 401 on a kept
// connection (it dropped the connection's context) is sent once more on
// a newly authenticated one: a 401 means the host did nothing with it.
func (p *connPool) exchange(ctx context.Context, body []byte, m *prepared) (*reply, error) {
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
func (p *connPool) get(ctx context.Context) (c *authConn, fresh bool, err error) {
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
func stillOpen(c *authConn) bool {
	_ = c.conn.SetReadDeadline(time.Now())
	_, err := c.br.Peek(1)
	_ = c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *connPool) put(c *authConn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < maxIdleConns {
		p.idle = append(p.idle, c)
		return
	}
	c.conn.Close()
}

func (p *connPool) closeIdle() {
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
func (p *connPool) dial(ctx context.Context) (*authConn, error) {
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
	c := &authConn{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	sec, err := p.auth.authenticate(ctx, p, c, cert)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if p.seal {
		if sec == nil {
			conn.Close()
			return nil, errors.New("the host did not agree to sealing, which message encryption needs")
		}
		c.sec = sec
	}
	return c, nil
}

// send carries one prepared message on its authenticated connection and
// unseals the answer.
func (p *connPool) send(ctx context.Context, m *prepared) (*reply, bool, error) {
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
	plain, err := c.sec.Open(r.body)
	if errors.Is(err, sealed.ErrMalformed) {
		return nil, false, err
	}
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
func (p *connPool) roundTrip(ctx context.Context, c *authConn, authorization, contentType string, body []byte) (*reply, bool, error) {
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

func (p *connPool) ioError(ctx context.Context, err error) error {
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
