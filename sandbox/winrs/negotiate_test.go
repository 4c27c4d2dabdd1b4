package winrs_test

import (
	"bufio"
	"encoding/base64"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bodgit/ntlmssp"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

var oidNTLMSSP = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}

// memberAcceptor is an acceptor for one service principal whose key is
// made here: enough for a host to count as a domain member.
func memberAcceptor(t *testing.T) *kerberos.Acceptor {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/"+aesHost, testRealm, "service-key", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	return &kerberos.Acceptor{Keytab: kt}
}

func dialRaw(t *testing.T, addr string) *sealedConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(testUser, testPassword))
	if err != nil {
		t.Fatal(err)
	}
	return &sealedConn{t: t, conn: conn, br: bufio.NewReader(conn), ntlm: client}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// negTokenResp decodes the token of a WWW-Authenticate: Negotiate header.
func negTokenResp(t *testing.T, header string) spnego.NegTokenResp {
	t.Helper()
	scheme, token, _ := strings.Cut(header, " ")
	raw, err := base64.StdEncoding.DecodeString(token)
	if scheme != "Negotiate" || err != nil {
		t.Fatalf("WWW-Authenticate %q", header)
	}
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(raw); err != nil || !tok.Resp {
		t.Fatalf("not a NegTokenResp: %v", err)
	}
	return tok.NegTokenResp
}

// NTLM in SPNEGO, as SSPI and pyspnego send it: the host answers in
// SPNEGO and the context seals as bare NTLM's does.
func TestNegotiateSPNEGOWrappedNTLM(t *testing.T) {
	ts := startServerWith(t, echoRunner{}, nil, stock)
	c := dialRaw(t, ts.httpAddr)
	neg, _ := c.ntlm.Authenticate(nil, nil)
	init := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{oidNTLMSSP}, MechTokenBytes: neg}}
	first, err := init.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := c.do("Negotiate "+b64(first), "", nil)
	challenge := negTokenResp(t, resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != 401 || challenge.NegState != 1 || !challenge.SupportedMech.Equal(oidNTLMSSP) {
		t.Fatalf("the challenge: %d, state %d, mech %v", resp.StatusCode, challenge.NegState, challenge.SupportedMech)
	}
	auth, err := c.ntlm.Authenticate(challenge.ResponseToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := (&spnego.NegTokenResp{NegState: 1, ResponseToken: auth}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = c.do("Negotiate "+b64(second), "", nil)
	if done := negTokenResp(t, resp.Header.Get("WWW-Authenticate")); resp.StatusCode != 200 || done.NegState != 0 {
		t.Fatalf("the AUTHENTICATE: %d, state %d", resp.StatusCode, done.NegState)
	}
	resp, body := c.do("", sealed.ContentType, c.seal(envelope(wsmanCreate, "", createBody)))
	if resp.StatusCode != 200 || !sealed.IsEncrypted(resp.Header.Get("Content-Type")) {
		t.Fatalf("a sealed Create: %d %q", resp.StatusCode, body)
	}
}

// A domain member offers Negotiate and Kerberos; with NTLM refused by
// policy an NTLM token, bare or in SPNEGO, gets the plain 401 and a log
// line saying why. A Kerberos token to a host outside any domain, and a
// token of the wrong mechanism for its scheme, are refused too.
func TestNegotiateRefusals(t *testing.T) {
	member := startServerWith(t, echoRunner{}, nil, func(c *winrs.Config) {
		stock(c)
		c.Kerberos = memberAcceptor(t)
		c.RefuseNTLM = true
	})
	neg, _ := dialRaw(t, member.httpAddr).ntlm.Authenticate(nil, nil)
	wrapped, err := (&spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{oidNTLMSSP}, MechTokenBytes: neg}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range [][]byte{neg, wrapped} {
		resp, _ := dialRaw(t, member.httpAddr).do("Negotiate "+b64(token), "", nil)
		if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || !slices.Equal(got, []string{"Negotiate", "Kerberos"}) {
			t.Errorf("NTLM refused by policy: %d %q", resp.StatusCode, got)
		}
	}
	if n := member.count("NTLM refused by policy"); n != 2 {
		t.Errorf("%d refusals logged, want 2", n)
	}
	if resp, _ := dialRaw(t, member.httpAddr).do("Kerberos "+b64(neg), "", nil); resp.StatusCode != 401 || member.count("wrong mechanism") != 1 {
		t.Errorf("NTLM on the Kerberos scheme: %d", resp.StatusCode)
	}
	// Not an AP-REQ at all: the acceptor refuses it.
	if resp, _ := dialRaw(t, member.httpAddr).do("Kerberos "+b64([]byte("\x60\x03\x06\x01\x00")), "", nil); resp.StatusCode != 401 || member.count("Kerberos refused") != 1 {
		t.Errorf("a broken Kerberos token: %d", resp.StatusCode)
	}

	workgroup := startServerWith(t, echoRunner{}, nil, stock)
	resp, _ := dialRaw(t, workgroup.httpAddr).do("Negotiate "+b64([]byte("\x60\x03\x06\x01\x00")), "", nil)
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || !slices.Equal(got, []string{"Negotiate"}) || workgroup.count("no keytab") != 1 {
		t.Errorf("Kerberos to a host in no domain: %d %q", resp.StatusCode, got)
	}
}
