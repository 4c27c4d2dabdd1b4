package kerberos

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// DER encodings of the mechanism OIDs a Negotiate token names: Kerberos
// V5 (RFC 1964), the one Windows 2000 got wrong and Windows still lists
// first, and SPNEGO itself.
var (
	derKRB5   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	derMSKRB5 = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02}
	derSPNEGO = []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}

	oidKRB5   = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
	oidMSKRB5 = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}
)

// Token identifiers of RFC 1964 section 1.1 and RFC 4121 section 4.2.
const (
	tokAPReq    uint16 = 0x0100
	tokAPRep    uint16 = 0x0200
	tokKRBError uint16 = 0x0300
	tokWrapRC4  uint16 = 0x0201
	tokWrapCFX  uint16 = 0x0504
)

// errDefective is the cause of every malformed token.
var errDefective = errors.New("defective token")

func defective(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errDefective}, args...)...)
}

// derLength appends the DER encoding of a length.
func derLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// gssHeaderSize is the length of the RFC 2743 section 3.1 framing of an
// inner token of n bytes (OID included in n).
func gssHeaderSize(n int) int { return len(derLength(nil, n)) + 1 }

// readGSSHeader reads the RFC 2743 framing: 0x60, the DER length of what
// follows, and the mechanism OID. It returns the declared length, the OID
// and where the token body starts; the declared length may differ from
// what b holds (RC4-HMAC wrap tokens are split between header and data).
func readGSSHeader(b []byte) (declared int, oid []byte, body int, err error) {
	if len(b) < 2 || b[0] != 0x60 {
		return 0, nil, 0, defective("no GSS-API framing")
	}
	at := 2
	switch l := b[1]; {
	case l < 0x80:
		declared = int(l)
	case l >= 0x81 && l <= 0x84:
		n := int(l & 0x7f)
		if len(b) < 2+n {
			return 0, nil, 0, defective("cut short")
		}
		for _, c := range b[2 : 2+n] {
			declared = declared<<8 | int(c)
		}
		if declared < 0x80 || (n > 1 && b[2] == 0) {
			return 0, nil, 0, defective("non-minimal length")
		}
		at += n
	default:
		return 0, nil, 0, defective("bad length")
	}
	if len(b) < at+2 || b[at] != 0x06 || int(b[at+1]) > len(b)-at-2 {
		return 0, nil, 0, defective("no mechanism OID")
	}
	end := at + 2 + int(b[at+1])
	if declared < end-at {
		return 0, nil, 0, defective("length shorter than its OID")
	}
	return declared, b[at:end], end, nil
}

// frameKRB5 frames a Kerberos message as an RFC 1964 initial context
// token (or its AP-REP and KRB-ERROR answers).
func frameKRB5(tokID uint16, msg []byte) []byte {
	n := len(derKRB5) + 2 + len(msg)
	out := make([]byte, 0, gssHeaderSize(n)+n)
	out = derLength(append(out, 0x60), n)
	out = append(out, derKRB5...)
	out = append(out, byte(tokID>>8), byte(tokID))
	return append(out, msg...)
}

// parseKRB5 returns the token identifier and message of an RFC 1964
// context token.
func parseKRB5(b []byte) (uint16, []byte, error) {
	declared, oid, body, err := readGSSHeader(b)
	if err != nil {
		return 0, nil, err
	}
	if !bytes.Equal(oid, derKRB5) && !bytes.Equal(oid, derMSKRB5) {
		return 0, nil, defective("not a Kerberos token")
	}
	if declared != len(b)-(body-len(oid)) {
		return 0, nil, defective("length %d where %d bytes follow", declared, len(b)-(body-len(oid)))
	}
	if len(b) < body+2 {
		return 0, nil, defective("no token identifier")
	}
	return uint16(b[body])<<8 | uint16(b[body+1]), b[body+2:], nil
}

// negTokenInit wraps an initial Kerberos token in SPNEGO, listing the
// mechanisms as Windows does.
func negTokenInit(krb5Token []byte) ([]byte, error) {
	t := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes:      []asn1.ObjectIdentifier{oidMSKRB5, oidKRB5},
		MechTokenBytes: krb5Token,
	}}
	return t.Marshal()
}

// negTokenResp wraps an answer in SPNEGO: accept-completed with an
// AP-REP, reject with a KRB-ERROR.
func negTokenResp(state spnego.NegState, mech asn1.ObjectIdentifier, krb5Token []byte) ([]byte, error) {
	t := spnego.SPNEGOToken{Resp: true, NegTokenResp: spnego.NegTokenResp{
		NegState:      asn1.Enumerated(state),
		SupportedMech: mech,
		ResponseToken: krb5Token,
	}}
	return t.Marshal()
}

// unwrapNegotiate returns the Kerberos token inside a Negotiate token,
// bare or SPNEGO, and whether it was SPNEGO. For a NegTokenInit it also
// returns the mechanism to name in the answer.
func unwrapNegotiate(b []byte) (inner []byte, isSPNEGO bool, mech asn1.ObjectIdentifier, state spnego.NegState, err error) {
	if len(b) > 0 && b[0] == 0x60 {
		_, oid, _, err := readGSSHeader(b)
		if err != nil {
			return nil, false, nil, 0, err
		}
		if !bytes.Equal(oid, derSPNEGO) {
			return b, false, nil, 0, nil
		}
	}
	var t spnego.SPNEGOToken
	if err := t.Unmarshal(b); err != nil {
		return nil, false, nil, 0, defective("%v", err)
	}
	if t.Init {
		mech := firstKerberosMech(t.NegTokenInit.MechTypes)
		if mech == nil {
			return nil, true, nil, 0, defective("SPNEGO offers no Kerberos mechanism")
		}
		if len(t.NegTokenInit.MechTokenBytes) == 0 {
			return nil, true, mech, 0, defective("SPNEGO carries no Kerberos token")
		}
		return t.NegTokenInit.MechTokenBytes, true, mech, 0, nil
	}
	r := t.NegTokenResp
	return r.ResponseToken, true, r.SupportedMech, spnego.NegState(r.NegState), nil
}

// firstKerberosMech is the mechanism an acceptor picks from a client's
// list: the first Kerberos one, so that its optimistic token applies.
func firstKerberosMech(list []asn1.ObjectIdentifier) asn1.ObjectIdentifier {
	for i, m := range list {
		if m.Equal(oidKRB5) || m.Equal(oidMSKRB5) {
			if i != 0 {
				// The optimistic token is for the first mechanism only; a
				// client preferring another one gets no Kerberos context.
				return nil
			}
			return m
		}
	}
	return nil
}
