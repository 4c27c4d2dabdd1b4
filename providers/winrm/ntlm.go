package winrm

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bodgit/ntlmssp"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
)

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

// ntlmAuth authenticates connections with NTLM.
type ntlmAuth struct {
	user, password string
}

func (a *ntlmAuth) describe() mechanism {
	return mechanism{auth: "NTLM as " + a.user, account: a.user, sealedWith: "the NTLM session key", bound: "NTLM bound to it by a channel binding"}
}

// authenticate runs NTLM's two legs on c with empty bodies, as pywinrm
// does to set up encryption, so no message is ever sent twice.
func (a *ntlmAuth) authenticate(ctx context.Context, p *connPool, c *authConn, cert *x509.Certificate) (securityContext, error) {
	domain, user := splitUser(a.user)
	client, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, a.password), ntlmssp.SetDomain(domain),
		ntlmssp.SetVersion(&ntlmssp.Version{ProductMajorVersion: 10, NTLMRevisionCurrent: ntlmssp.NTLMSSPRevisionW2K3}))
	if err != nil {
		return nil, err
	}
	negotiate, err := client.Authenticate(nil, nil)
	if err != nil {
		return nil, err
	}
	r, _, err := p.roundTrip(ctx, c, negotiateHeader(negotiate), "", nil)
	if err != nil {
		return nil, err
	}
	challenge, ok := negotiateToken(r.header)
	if r.status != http.StatusUnauthorized || !ok || len(challenge) == 0 {
		return nil, &handshakeError{kind: errNoNegotiate, status: r.status, offers: schemes(r.header)}
	}
	var bindings *ntlmssp.ChannelBindings
	if cert != nil {
		bindings = &ntlmssp.ChannelBindings{ApplicationData: channelBindings(cert)}
	}
	answer, err := client.Authenticate(challenge, bindings)
	if err != nil {
		return nil, fmt.Errorf("the host's NTLM challenge: %w", err)
	}
	r, _, err = p.roundTrip(ctx, c, negotiateHeader(answer), "", nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, &handshakeError{kind: errRefused, status: r.status, offers: schemes(r.header)}
	}
	if s := client.SecuritySession(); s != nil {
		return ntlmContext{s}, nil
	}
	return nil, nil
}

// ntlmContext is an NTLM session as a securityContext: its 16-byte
// signature heads the sealed message.
type ntlmContext struct{ s *ntlmssp.SecuritySession }

func (n ntlmContext) Frame(msg []byte) ([]byte, error) {
	return sealed.Frame(msg, sealed.SignatureSize, func(b []byte) ([]byte, error) {
		out, sig, err := n.s.Wrap(b)
		copy(b, out)
		return sig, err
	})
}

func (n ntlmContext) Open(body []byte) ([]byte, error) {
	sig, msg, err := sealed.Parse(body)
	if err != nil {
		return nil, err
	}
	return n.s.Unwrap(msg, sig)
}

func negotiateHeader(token []byte) string {
	return "Negotiate " + base64.StdEncoding.EncodeToString(token)
}

// negotiateToken is the token of the host's Negotiate (or NTLM, or
// Kerberos) answer.
// ok is false when the host offers none of them, or sent a token that is
// not base64. A host that offers several schemes bare (a 401's
// "Negotiate" and "Kerberos") gives an empty token.
func negotiateToken(h http.Header) (token []byte, ok bool) {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, data, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Negotiate") && !strings.EqualFold(scheme, "NTLM") && !strings.EqualFold(scheme, "Kerberos") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
		if err != nil {
			return nil, false
		}
		if len(b) > 0 {
			return b, true
		}
		ok = true
	}
	return nil, ok
}

// splitUser separates DOMAIN\user; user@domain is passed whole, as
// Windows takes a UPN as the user name.
func splitUser(u string) (domain, user string) {
	if d, name, ok := strings.Cut(u, `\`); ok {
		return d, name
	}
	return "", u
}

// channelBindings is the application data of RFC 5929's
// tls-server-end-point binding for cert: its hash with the signature's
// algorithm, SHA-256 for MD5 and SHA-1.
func channelBindings(cert *x509.Certificate) []byte {
	h := crypto.SHA256
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	}
	d := h.New()
	d.Write(cert.Raw)
	return append([]byte("tls-server-end-point:"), d.Sum(nil)...)
}
