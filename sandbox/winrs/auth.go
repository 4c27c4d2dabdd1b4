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

// connState is per TCP connection: NTLM authenticates a connection, not a
// request, so the pending challenge and the outcome live here.
type connState struct {
	mu      sync.Mutex
	pending *ntlm.Pending
	user    string // set once NTLM succeeded on this connection
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
		cs.mu.Lock()
		user := cs.user
		cs.mu.Unlock()
		if user != "" {
			return user, authOK
		}
		return "", authDenied
	case strings.EqualFold(scheme, "Basic") && !s.cfg.NoBasic:
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
		if !ok || !s.checkPassword(user, pass) {
			return "", authDenied
		}
		return s.accountName(user), authOK
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
			cs.pending, cs.user = p, ""
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
				return "", authDenied
			}
			v, err := p.Authenticate(msg)
			if err != nil {
				return "", authDenied
			}
			if v.ChannelBindings != nil {
				if !s.channelBindingOK(r, v.ChannelBindings) {
					s.logf("%s NTLM channel binding does not match this certificate", r.RemoteAddr)
					return "", authDenied
				}
				if r.TLS != nil {
					s.logf("%s NTLM channel binding verified", r.RemoteAddr)
				}
			}
			user := s.accountName(v.User)
			cs.mu.Lock()
			cs.user = user
			cs.mu.Unlock()
			return user, authOK
		}
		return "", authDenied
	}
	return "", authDenied
}

// accountName is the account a user name names on this machine, so the
// owner of a shell is the same however the client wrote it: Basic passes
// "sandbox1\gsd", ".\gsd" or "gsd" as typed, NTLM the bare name. A
// local domain (".", the machine name, "localhost") is dropped and the
// configured account's spelling used, as Windows matches names without
// regard to case.
func (s *Server) accountName(user string) string {
	if domain, name, ok := strings.Cut(user, `\`); ok {
		if domain == "." || strings.EqualFold(domain, s.cfg.Machine) || strings.EqualFold(domain, "localhost") {
			user = name
		}
	}
	if strings.EqualFold(user, s.cfg.User) {
		return s.cfg.User
	}
	return user
}

// checkPassword compares in constant time; the user name is
// case-insensitive as on Windows, and may carry a domain or machine.
func (s *Server) checkPassword(user, pass string) bool {
	if i := strings.LastIndex(user, `\`); i >= 0 {
		user = user[i+1:]
	}
	userOK := strings.EqualFold(user, s.cfg.User)
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password)) == 1
	return userOK && passOK
}

// channelBindingOK checks the client's channel binding token against this
// connection's certificate, which is what stops an NTLM exchange from
// being relayed to another TLS endpoint.
func (s *Server) channelBindingOK(r *http.Request, got []byte) bool {
	if r.TLS == nil || s.certHash == nil {
		// A binding over plain HTTP cannot be checked; Windows ignores it.
		return true
	}
	return subtle.ConstantTimeCompare(ntlm.TLSChannelBindings(s.certHash), got) == 1
}

func (s *Server) writeUnauthorized(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", "Negotiate")
	if !s.cfg.NoBasic {
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
