package kerberos

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

func (k Kind) String() string {
	switch k {
	case NoTicket:
		return "no ticket"
	case TicketExpired:
		return "ticket expired"
	case ClockSkew:
		return "clock skew"
	case UnknownSPN:
		return "unknown service principal"
	case WrongRealm:
		return "wrong realm"
	case KDCUnreachable:
		return "KDC unreachable"
	case BadCredentials:
		return "bad credentials"
	case Refused:
		return "refused"
	}
	return "other"
}

func newError(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Err: fmt.Errorf("kerberos: "+format, args...)}
}

// kindOfCode classifies a KRB-ERROR code, from the KDC or the acceptor.
func kindOfCode(code int32, fromKDC bool) Kind {
	switch code {
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		return UnknownSPN
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, errorcode.KDC_ERR_PREAUTH_FAILED, errorcode.KDC_ERR_CLIENT_REVOKED,
		errorcode.KDC_ERR_KEY_EXPIRED:
		return BadCredentials
	case errorcode.KRB_AP_ERR_SKEW:
		return ClockSkew
	case errorcode.KRB_AP_ERR_TKT_EXPIRED:
		return TicketExpired
	case errorcode.KDC_ERR_WRONG_REALM:
		return WrongRealm
	}
	if fromKDC {
		return Other
	}
	return Refused
}

// krbCode finds the KRB-ERROR code in gokrb5's error text: gokrb5 keeps
// only the text of the KRB-ERROR a KDC answered with.
var krbCode = regexp.MustCompile(`KRB Error: \((\d+)\) ?(.*)$`)

// kdcError classifies an error of gokrb5's AS or TGS exchange. doing says
// what was attempted ("log in as ...", "get a ticket for ..."); realm is
// the realm whose KDC was asked.
func kdcError(err error, doing, realm string) *Error {
	var ke *Error
	if errors.As(err, &ke) {
		return ke
	}
	s := err.Error()
	if m := krbCode.FindStringSubmatch(s); m != nil {
		code, _ := strconv.Atoi(m[1])
		kind := kindOfCode(int32(code), true)
		detail := m[2]
		switch kind {
		case UnknownSPN:
			return newError(kind, "%s: the KDC of %s knows no such service principal (%s)", doing, realm, detail)
		case BadCredentials:
			return newError(kind, "%s: the KDC of %s refused the credentials (%s)", doing, realm, detail)
		case ClockSkew:
			return newError(kind, "%s: this machine's clock and the clock of the KDC of %s differ by more than the realm allows (%s)", doing, realm, detail)
		case TicketExpired:
			return newError(kind, "%s: the ticket-granting ticket has expired (%s)", doing, realm, detail)
		case WrongRealm:
			return newError(kind, "%s: the KDC asked is not the KDC of realm %s (%s)", doing, realm, detail)
		}
		return newError(kind, "%s: the KDC of %s answered %s", doing, realm, strings.TrimSpace(m[0][len("KRB Error: "):]))
	}
	switch {
	case strings.Contains(s, "no KDCs defined in configuration for realm"), strings.Contains(s, "no KDC SRV records found"):
		return newError(WrongRealm, "%s: the Kerberos configuration names no KDC for realm %s", doing, realm)
	case strings.Contains(s, "error sending to a KDC"), strings.Contains(s, "communication error with KDC"),
		strings.Contains(s, "failed to communicate with KDC"):
		detail := s
		if i := strings.LastIndex(s, "error sending to a KDC: "); i >= 0 {
			detail = s[i+len("error sending to a KDC: "):]
		}
		return newError(KDCUnreachable, "%s: no KDC of realm %s answered: %s", doing, realm, detail)
	case strings.Contains(s, "clock skew with KDC too large"):
		return newError(ClockSkew, "%s: this machine's clock and the clock of the KDC of %s differ by more than 5 minutes", doing, realm)
	case strings.Contains(s, "Decrypting_Error") && strings.Contains(s, "AS_REP"):
		// A KDC that needs no pre-authentication answers anyone; a wrong
		// password shows only when its answer does not decrypt.
		return newError(BadCredentials, "%s: the KDC's answer does not decrypt with the password or keytab given", doing)
	}
	return newError(Other, "%s: %v", doing, err)
}

// ParseErrorToken classifies a KRB-ERROR token an acceptor sent back
// (bare or in a SPNEGO reject), as found in a 401's WWW-Authenticate
// header; it returns nil when token is no KRB-ERROR.
func ParseErrorToken(token []byte) *Error {
	inner, _, _, _, err := unwrapNegotiate(token)
	if err != nil || len(inner) == 0 {
		return nil
	}
	id, msg, err := parseKRB5(inner)
	if err != nil || id != tokKRBError {
		return nil
	}
	return errorFromKRBError(msg)
}

func errorFromKRBError(msg []byte) *Error {
	var ke messages.KRBError
	if err := ke.Unmarshal(msg); err != nil {
		return newError(Refused, "the host refused the authentication with a KRB-ERROR that does not parse: %v", err)
	}
	kind := kindOfCode(ke.ErrorCode, false)
	what := errorcode.Lookup(ke.ErrorCode)
	if ke.EText != "" {
		what += " - " + ke.EText
	}
	switch kind {
	case ClockSkew:
		return newError(kind, "the host refused the ticket: its clock and this machine's differ by more than it allows (%s)", what)
	case TicketExpired:
		return newError(kind, "the host refused the ticket as expired (%s)", what)
	}
	return newError(kind, "the host refused the ticket (%s)", what)
}
