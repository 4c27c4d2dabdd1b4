package kerberos

import (
	"errors"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// This file fixes the package's API; the bodies are filled in by the
// implementation.

var errUnimplemented = errors.New("kerberos: not implemented yet")

// Credentials say where the initiator's identity comes from. With User
// and Password or Keytab set, the client logs in itself; otherwise it
// uses the ticket cache a kinit left (CCache, else KRB5CCNAME, else the
// system default).
type Credentials struct {
	// Config is the path of a krb5.conf; empty: KRB5_CONFIG, else
	// /etc/krb5.conf.
	Config string
	// CCache is the path of a ticket cache ("FILE:" prefix allowed).
	CCache string
	// Keytab is the path of a keytab holding User's keys.
	Keytab string
	// User is "user", "user@REALM" or "REALM\user".
	User string
	// Password is User's password.
	Password string
	// Realm applies when User names none; empty: from the address's
	// domain or krb5.conf's default_realm.
	Realm string
}

// Client gets service tickets for one identity. It is safe for
// concurrent use and caches tickets until they expire.
type Client struct{}

// NewClient loads the configuration and credentials; errors are *Error.
func NewClient(c Credentials) (*Client, error) { return nil, errUnimplemented }

// Principal is the client's principal name, user@REALM.
func (c *Client) Principal() string { return "" }

// InitOptions shape the first token.
type InitOptions struct {
	// SPNEGO wraps the AP-REQ in a NegTokenInit (Negotiate); otherwise
	// the token is a bare Kerberos GSS token (RFC 1964 framing), as
	// requests-kerberos sends.
	SPNEGO bool
	// ChannelBindings is the application data of the TLS channel binding
	// ("tls-server-end-point:" and the certificate's hash, RFC 5929), or
	// nil over plain HTTP.
	ChannelBindings []byte
}

// Initiator is a security context on its way: the AP-REQ was sent, the
// AP-REP is awaited.
type Initiator struct{}

// Initiate gets a ticket for spn ("HTTP/host.example.com", realm
// optional) and returns the context and the token to send in an
// "Authorization: Negotiate" header. The AP-REQ asks for mutual
// authentication, integrity and confidentiality.
func (c *Client) Initiate(spn string, opts InitOptions) (*Initiator, []byte, error) {
	return nil, nil, errUnimplemented
}

// Complete checks the host's answer (an AP-REP, bare or in a
// NegTokenResp) and returns the established session, keyed with the
// acceptor's subkey when it sent one.
func (i *Initiator) Complete(token []byte) (*Session, error) { return nil, errUnimplemented }

// Acceptor is the server side: it accepts AP-REQs for the principals of
// its keytab.
type Acceptor struct {
	Keytab *keytab.Keytab
	// MaxSkew is the clock skew tolerated (5 minutes when 0).
	MaxSkew time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Accepted is a verified AP-REQ.
type Accepted struct {
	// Client is the authenticated principal, user@REALM.
	Client string
	// Session seals and opens messages on the established context.
	Session *Session
	// Token is the answer for the WWW-Authenticate header: the AP-REP
	// (with an acceptor subkey), framed as the request's token was.
	Token []byte
	// ChannelBindings is the MD5 the authenticator's checksum carried
	// (nil when the client bound to no channel).
	ChannelBindings []byte
}

// Accept verifies the first token of a client (bare Kerberos or SPNEGO);
// errors are *Error.
func (a *Acceptor) Accept(token []byte) (*Accepted, error) { return nil, errUnimplemented }

// Session is an established context's message protection: wrap tokens
// with confidentiality, in the header-and-data layout WinRM frames
// ([MS-WSMV] 2.2.9.1.2): the header is the signature, the data the
// sealed message.
type Session struct{}

// HeaderSize is the length of the header Wrap returns.
func (s *Session) HeaderSize() int { return 0 }

// Wrap seals msg in place and returns the token's header.
func (s *Session) Wrap(msg []byte) (header []byte, err error) { return nil, errUnimplemented }

// Unwrap verifies and opens a sealed message (which may be longer than
// the plaintext it returns).
func (s *Session) Unwrap(header, data []byte) ([]byte, error) { return nil, errUnimplemented }

// Kind classifies what went wrong, so that callers can say how to fix it.
type Kind int

const (
	// Other is anything not below.
	Other Kind = iota
	// NoTicket: no ticket cache (or it holds no ticket for the realm).
	NoTicket
	// TicketExpired: the cached ticket-granting ticket has expired.
	TicketExpired
	// ClockSkew: the KDC or the host refused the time (KRB_AP_ERR_SKEW).
	ClockSkew
	// UnknownSPN: the KDC knows no such service principal.
	UnknownSPN
	// WrongRealm: the realm is not known to the configuration, or the KDC
	// is not the realm's.
	WrongRealm
	// KDCUnreachable: no KDC of the realm answered.
	KDCUnreachable
	// BadCredentials: the KDC refused the password or keytab key, or the
	// client principal is unknown.
	BadCredentials
	// Refused: the acceptor refused the AP-REQ or the AP-REP does not verify.
	Refused
)

// Error is a Kerberos failure with its kind; its message never holds a
// password, key or ticket.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
