package winrs

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/sandbox/ntlm"
)

// Role is what a local account may do over WinRM.
type Role int

const (
	// Administrator: a member of Administrators whose network logons keep
	// their rights (the built-in Administrator, a domain account, or any
	// local one with LocalAccountTokenFilterPolicy = 1).
	Administrator Role = iota
	// FilteredAdministrator: a local member of Administrators whose token
	// UAC filters on network logons (LocalAccountTokenFilterPolicy = 0,
	// Windows' default). WinRM's RootSDDL does not let the filtered token
	// in, and Windows answers 401 as for a wrong password.
	FilteredAdministrator
	// RemoteManagementUser: a standard user in Remote Management Users.
	// WinRM lets it in, but the cmd shell refuses it: Access is denied.
	RemoteManagementUser
)

// Account is a further local account of the host, beside the
// administrator the Config names.
type Account struct {
	User     string
	Password string
	Role     Role
}

// messageSealer is an established context's message protection, NTLM's
// or Kerberos', on whole WinRM bodies ([MS-WSMV] 2.2.9.1): the framing is
// the same, but what follows the sealed message (RC4-HMAC's padding)
// differs by mechanism.
type messageSealer interface {
	// Frame seals msg into a multipart/encrypted body.
	Frame(msg []byte) ([]byte, error)
	// Open verifies and opens a body and returns the message.
	Open(body []byte) ([]byte, error)
}

// connState is per TCP connection: Negotiate authenticates a connection,
// not a request, so the pending NTLM challenge, the outcome and the
// context that seals messages live here. HTTP/1.1 serves one request at a
// time per connection, so the sealing streams are used in order.
type connState struct {
	mu      sync.Mutex
	pending *ntlm.Pending
	user    string        // set once authentication succeeded on this connection
	session messageSealer // the context's sealing, when it can seal
	// broken is set when a sealed message did not verify: the streams
	// are out of step, and nothing more can be read on this connection.
	broken bool
}

type connKey struct{}

// ConnContext attaches per-connection state; set it as the
// http.Server's ConnContext.
func (s *Server) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

func stateOf(r *http.Request) *connState {
	if cs, ok := r.Context().Value(connKey{}).(*connState); ok {
		return cs
	}
	return &connState{}
}

func (cs *connState) get() (user string, session messageSealer) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.user, cs.session
}

// established records a context that succeeded; a nil session is one
// that cannot seal.
func (cs *connState) established(user string, session messageSealer) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.pending = nil
	cs.user, cs.session, cs.broken = user, session, false
}

func (cs *connState) isBroken() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.broken
}

// authResult says what authenticate decided.
type authResult int

const (
	authOK authResult = iota
	// authAnswered: authenticate set a WWW-Authenticate header with a
	// token (an NTLM challenge, a KRB-ERROR) and the caller answers 401
	// with it.
	authAnswered
	// authDenied: the caller sends the plain 401 with the offered schemes.
	authDenied
)

// authenticate checks the request's credentials. The first token of a
// Negotiate exchange is peeked at to tell NTLM (bare or in SPNEGO) from
// Kerberos, as Windows' Negotiate package does.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, authResult) {
	cs := stateOf(r)
	h := r.Header.Get("Authorization")
	scheme, data, _ := strings.Cut(h, " ")
	data = strings.TrimSpace(data)
	switch {
	case h == "":
		if user, _ := cs.get(); user != "" {
			return user, authOK
		}
		return "", authDenied
	case strings.EqualFold(scheme, "Basic") && s.cfg.Basic:
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "", authDenied
		}
		if !utf8.Valid(raw) {
			// RFC 7617 leaves the charset open; requests (pywinrm) sends
			// Latin-1.
			raw = latin1ToUTF8(raw)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", authDenied
		}
		a, ok := s.checkPassword(user, pass)
		if !ok || !s.admitted(r, a) {
			return "", authDenied
		}
		return a.User, authOK
	case strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM") || strings.EqualFold(scheme, "Kerberos"):
		msg, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "", authDenied
		}
		ntlmMsg, wrapped := ntlmToken(msg)
		switch {
		case ntlmMsg != nil && strings.EqualFold(scheme, "Kerberos"),
			ntlmMsg == nil && strings.EqualFold(scheme, "NTLM"):
			s.logf("%s a token of the wrong mechanism for the %s scheme", r.RemoteAddr, scheme)
			return "", authDenied
		case ntlmMsg != nil && s.cfg.RefuseNTLM:
			s.logf("%s NTLM refused by policy (Network security: Restrict NTLM); use Kerberos", r.RemoteAddr)
			return "", authDenied
		case ntlmMsg != nil:
			return s.authenticateNTLM(w, r, cs, scheme, ntlmMsg, wrapped)
		}
		return s.authenticateKerberos(w, r, cs, scheme, msg)
	}
	return "", authDenied
}

// authenticateNTLM takes one leg of an NTLM exchange, answering in SPNEGO
// when the client wrapped its token in it.
func (s *Server) authenticateNTLM(w http.ResponseWriter, r *http.Request, cs *connState, scheme string, msg []byte, wrapped bool) (string, authResult) {
	switch {
	case ntlm.IsNegotiate(msg):
		challenge, p, err := s.ntlm.Challenge(msg)
		if err != nil {
			return "", authDenied
		}
		if wrapped {
			if challenge, err = negTokenResp(negIncomplete, challenge); err != nil {
				return "", authDenied
			}
		}
		cs.mu.Lock()
		cs.pending, cs.user, cs.session, cs.broken = p, "", nil, false
		cs.mu.Unlock()
		// The caller sends the 401 once it has read the body: HTTP/1.x
		// may stop body reads after a response is written, and the
		// next leg of the handshake needs this connection.
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(challenge))
		return "", authAnswered
	case ntlm.IsAuthenticate(msg):
		cs.mu.Lock()
		p := cs.pending
		cs.pending = nil
		cs.mu.Unlock()
		if p == nil {
			s.logf("%s NTLM AUTHENTICATE without a challenge on this connection", r.RemoteAddr)
			return "", authDenied
		}
		v, err := p.Authenticate(msg)
		if err != nil {
			s.logf("%s NTLM refused: %v", r.RemoteAddr, err)
			return "", authDenied
		}
		if !s.channelBindingOK(r, "NTLM", v.ChannelBindings) {
			return "", authDenied
		}
		a, _ := s.account(v.User)
		if !s.admitted(r, a) {
			return "", authDenied
		}
		var session messageSealer
		if v.Session != nil && v.Session.Sealing() {
			session = v.Session
		}
		cs.established(a.User, session)
		if wrapped {
			// SPNEGO ends with accept-completed. The client's mechListMIC
			// is not checked (see the README).
			if done, err := negTokenResp(negCompleted, nil); err == nil {
				w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(done))
			}
		}
		return a.User, authOK
	}
	return "", authDenied
}

// authenticateKerberos accepts an AP-REQ (bare or in SPNEGO) with the
// host's keytab. Success answers the AP-REP in WWW-Authenticate on the
// response that follows; a refusal the acceptor has a KRB-ERROR for gets
// it in the 401, as Windows sends KRB_AP_ERR_SKEW and the like.
func (s *Server) authenticateKerberos(w http.ResponseWriter, r *http.Request, cs *connState, scheme string, token []byte) (string, authResult) {
	if s.cfg.Kerberos == nil {
		s.logf("%s Kerberos refused: the host has no keytab (not in a domain)", r.RemoteAddr)
		return "", authDenied
	}
	acc, err := s.cfg.Kerberos.Accept(token)
	if err != nil {
		s.logf("%s Kerberos refused: %v", r.RemoteAddr, err)
		if token := errorToken(err); len(token) > 0 {
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(token))
			return "", authAnswered
		}
		return "", authDenied
	}
	if !s.channelBindingOK(r, "Kerberos", acc.ChannelBindings) {
		return "", authDenied
	}
	a, ok := s.principalAccount(acc.Client)
	if !ok {
		s.logf("%s Kerberos principal %s maps to no account of this host", r.RemoteAddr, acc.Client)
		return "", authDenied
	}
	if !s.admitted(r, a) {
		return "", authDenied
	}
	cs.established(a.User, acc.Session)
	w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(acc.Token))
	s.logf("%s Kerberos: %s authenticated as %s", r.RemoteAddr, acc.Client, a.User)
	return a.User, authOK
}

// errorToken is the KRB-ERROR an acceptor's refusal carries for the
// client, or nil.
func errorToken(err error) []byte {
	var ke *kerberos.Error
	if errors.As(err, &ke) {
		return ke.Token
	}
	return nil
}

// principalAccount maps user@REALM to the host's account: as a domain
// member maps its domain's users, only the host's own realm counts, and
// the user part matches an account's name without regard to case.
func (s *Server) principalAccount(principal string) (Account, bool) {
	user, realm, ok := strings.Cut(principal, "@")
	if !ok || s.realm == "" || !strings.EqualFold(realm, s.realm) || strings.ContainsAny(user, `\/`) {
		return Account{}, false
	}
	for _, a := range s.accounts() {
		if strings.EqualFold(user, a.User) {
			return a, true
		}
	}
	return Account{}, false
}

// ntlmToken returns the NTLM message a Negotiate token carries, bare or
// as the mechanism token of a SPNEGO NegTokenInit or NegTokenResp, and
// whether it came in SPNEGO; nil when the token is not NTLM.
func ntlmToken(msg []byte) ([]byte, bool) {
	isNTLM := func(b []byte) bool { return ntlm.IsNegotiate(b) || ntlm.IsAuthenticate(b) }
	if isNTLM(msg) {
		return msg, false
	}
	var tok spnego.SPNEGOToken
	if tok.Unmarshal(msg) != nil {
		return nil, false
	}
	inner := tok.NegTokenInit.MechTokenBytes
	if tok.Resp {
		inner = tok.NegTokenResp.ResponseToken
	}
	if isNTLM(inner) {
		return inner, true
	}
	return nil, false
}

// SPNEGO negotiation states (RFC 4178 4.2.2).
const (
	negCompleted  = 0
	negIncomplete = 1
)

// oidNTLM is NTLMSSP's mechanism (1.3.6.1.4.1.311.2.2.10).
var oidNTLM = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}

func negTokenResp(state int, token []byte) ([]byte, error) {
	resp := spnego.NegTokenResp{NegState: asn1.Enumerated(state), ResponseToken: token}
	if state == negIncomplete {
		resp.SupportedMech = oidNTLM
	}
	return resp.Marshal()
}

// admitted applies WinRM's RootSDDL: an administrator whose token UAC
// filtered is refused after it proved its password.
func (s *Server) admitted(r *http.Request, a Account) bool {
	if a.Role == FilteredAdministrator {
		s.logf("%s authorization of %s failed: the token is filtered (LocalAccountTokenFilterPolicy = 0)", r.RemoteAddr, a.User)
		return false
	}
	return true
}

// account finds a local account by any of the names Windows accepts for
// it: Basic passes "sandbox1\gsd", ".\gsd" or "gsd" as typed, NTLM the
// bare name. A local domain (".", the machine name, "localhost") is
// dropped, and names match without regard to case, as on Windows. The
// account's own spelling is returned, so the owner of a shell is the same
// however the client wrote it.
func (s *Server) account(user string) (Account, bool) {
	if domain, name, ok := strings.Cut(user, `\`); ok {
		if domain == "." || strings.EqualFold(domain, s.cfg.Machine) || strings.EqualFold(domain, "localhost") {
			user = name
		}
	}
	for _, a := range s.accounts() {
		if strings.EqualFold(user, a.User) {
			return a, true
		}
	}
	return Account{User: user}, false
}

// accounts lists the configured administrator first, then the others.
func (s *Server) accounts() []Account {
	return append([]Account{{User: s.cfg.User, Password: s.cfg.Password, Role: Administrator}}, s.cfg.Accounts...)
}

// checkPassword compares in constant time.
func (s *Server) checkPassword(user, pass string) (Account, bool) {
	a, found := s.account(user)
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password)) == 1
	return a, found && passOK
}

// channelBindingOK checks the client's channel binding token against this
// connection's certificate, which is what stops an NTLM exchange from
// being relayed to another TLS endpoint. Windows' default hardening
// (Relaxed) checks a binding when the client sends one; Strict also
// refuses an exchange over HTTPS that carries none.
func (s *Server) channelBindingOK(r *http.Request, mech string, got []byte) bool {
	if r.TLS == nil || s.certHash == nil {
		// A binding over plain HTTP cannot be checked; Windows ignores it.
		return true
	}
	if got == nil {
		if s.cfg.StrictChannelBinding {
			s.logf("%s %s without a channel binding refused (CbtHardeningLevel = Strict)", r.RemoteAddr, mech)
			return false
		}
		return true
	}
	// Both mechanisms carry the MD5 of the same gss_channel_bindings
	// struct: NTLM in MsvAvChannelBindings, Kerberos in the
	// authenticator's checksum (RFC 4121 4.1.1.2).
	if subtle.ConstantTimeCompare(ntlm.TLSChannelBindings(s.certHash), got) != 1 {
		s.logf("%s %s channel binding does not match this certificate", r.RemoteAddr, mech)
		return false
	}
	s.logf("%s %s channel binding verified", r.RemoteAddr, mech)
	return true
}

func (s *Server) writeUnauthorized(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", "Negotiate")
	if s.cfg.Kerberos != nil {
		// A domain member offers Kerberos on its own too.
		w.Header().Add("WWW-Authenticate", "Kerberos")
	}
	if s.cfg.Basic {
		w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

func latin1ToUTF8(b []byte) []byte {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return []byte(string(r))
}

var errTooLarge = errors.New("request body over MaxEnvelopeSize")
