package kerberos

import (
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

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

// Acceptor is the server side: it accepts AP-REQs for the principals of
// its keytab, refusing replays (per keytab) and clocks off by more than
// MaxSkew.
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
	// (nil when the client bound to no channel); over TLS it must equal
	// ChannelBindingsHash of the connection's binding.
	ChannelBindings []byte
}

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
	// Token is, from Accept, the KRB-ERROR to send back in the 401's
	// WWW-Authenticate header, framed as the request's token was (nil
	// when there is none to send).
	Token []byte
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
