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

// connState is per TCP connection: NTLM authenticates a connection, not a
// request, so the pending challenge, the outcome and the context that
// seals messages live here. HTTP/1.1 serves one request at a time per
// connection, so the sealing streams are used in order.
type connState struct {
	mu      sync.Mutex
	pending *ntlm.Pending
	user    string        // set once NTLM succeeded on this connection
	session *ntlm.Session // the context's signing and sealing, when negotiated
	// broken is set when a sealed message did not verify: the RC4 streams
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

func (cs *connState) get() (user string, session *ntlm.Session) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.user, cs.session
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
	authChallenge
	authDenied
)

// authenticate checks the request's credentials. For authChallenge it has
// set the NTLM challenge header and the caller answers 401 with it; for
// authDenied the caller sends the plain 401.
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
	case strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM"):
		msg, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "", authDenied
		}
		switch {
		case ntlm.IsNegotiate(msg):
			challenge, p, err := s.ntlm.Challenge(msg)
			if err != nil {
				return "", authDenied
			}
			cs.mu.Lock()
			cs.pending, cs.user, cs.session, cs.broken = p, "", nil, false
			cs.mu.Unlock()
			// The caller sends the 401 once it has read the body: HTTP/1.x
			// may stop body reads after a response is written, and the
			// next leg of the handshake needs this connection.
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(challenge))
			return "", authChallenge
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
			if !s.channelBindingOK(r, v.ChannelBindings) {
				return "", authDenied
			}
			a, _ := s.account(v.User)
			if !s.admitted(r, a) {
				return "", authDenied
			}
			cs.mu.Lock()
			cs.user, cs.session = a.User, v.Session
			cs.mu.Unlock()
			return a.User, authOK
		}
		return "", authDenied
	}
	return "", authDenied
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
func (s *Server) channelBindingOK(r *http.Request, got []byte) bool {
	if r.TLS == nil || s.certHash == nil {
		// A binding over plain HTTP cannot be checked; Windows ignores it.
		return true
	}
	if got == nil {
		if s.cfg.StrictChannelBinding {
			s.logf("%s NTLM without a channel binding refused (CbtHardeningLevel = Strict)", r.RemoteAddr)
			return false
		}
		return true
	}
	if subtle.ConstantTimeCompare(ntlm.TLSChannelBindings(s.certHash), got) != 1 {
		s.logf("%s NTLM channel binding does not match this certificate", r.RemoteAddr)
		return false
	}
	s.logf("%s NTLM channel binding verified", r.RemoteAddr)
	return true
}

func (s *Server) writeUnauthorized(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", "Negotiate")
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
