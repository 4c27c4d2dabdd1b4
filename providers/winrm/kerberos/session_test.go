package kerberos

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The tests here need no KDC: a ticket is made from an in-memory
// keytab, as a KDC would make it.

const (
	testRealm = "TEST.REALM"
	testSPN   = "HTTP/host.test"
)

var testEnctypes = []struct {
	name string
	id   int32
}{
	{"aes256", etypeID.AES256_CTS_HMAC_SHA1_96},
	{"aes128", etypeID.AES128_CTS_HMAC_SHA1_96},
	{"rc4", etypeID.RC4_HMAC},
}

type fixture struct {
	kt     *keytab.Keytab
	tkt    messages.Ticket
	key    types.EncryptionKey
	cname  types.PrincipalName
	issued time.Time
}

// newFixture is a service keytab and a ticket for it, valid from issued
// for ten hours.
func newFixture(t testing.TB, etype int32, issued time.Time) fixture {
	return newFixtureKey(t, etype, issued, "service secret")
}

func newFixtureKey(t testing.TB, etype int32, issued time.Time, secret string) fixture {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(testSPN, testRealm, secret, issued, 2, etype); err != nil {
		t.Fatal(err)
	}
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "gsd")
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, testSPN)
	tkt, key, err := messages.NewTicket(cname, testRealm, sname, testRealm, types.NewKrbFlags(), kt, etype, 2,
		issued, issued, issued.Add(10*time.Hour), issued.Add(10*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{kt: kt, tkt: tkt, key: key, cname: cname, issued: issued}
}

// authenticators tells apart the authenticators a test makes at the
// same instant, which an acceptor would take for replays.
var authenticators int64

func (f fixture) initiate(t testing.TB, now time.Time, opts InitOptions) (*Initiator, []byte) {
	t.Helper()
	authenticators++
	i, tok, err := initiate(testSPN, f.tkt, f.key, f.cname, testRealm, now.Add(time.Duration(authenticators)*time.Microsecond), opts)
	if err != nil {
		t.Fatal(err)
	}
	return i, tok
}

// establish runs the whole exchange and returns both sides' sessions.
func establish(t testing.TB, etype int32, opts InitOptions) (client, server *Session, acc *Accepted) {
	t.Helper()
	now := time.Now()
	f := newFixture(t, etype, now.Add(-time.Minute))
	init, tok := f.initiate(t, now, opts)
	acc, err := (&Acceptor{Keytab: f.kt}).Accept(tok)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := init.Complete(acc.Token)
	if err != nil {
		t.Fatal(err)
	}
	return cs, acc.Session, acc
}

func TestExchangeAndSealing(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 1000, 70_000}
	for _, et := range testEnctypes {
		for _, spnego := range []bool{false, true} {
			for _, cb := range [][]byte{nil, []byte("tls-server-end-point:0123456789abcdef")} {
				t.Run(fmt.Sprintf("%s/spnego=%v/cb=%v", et.name, spnego, cb != nil), func(t *testing.T) {
					c, s, acc := establish(t, et.id, InitOptions{SPNEGO: spnego, ChannelBindings: cb})
					if acc.Client != "gsd@"+testRealm {
						t.Errorf("client %q", acc.Client)
					}
					if cb == nil && acc.ChannelBindings != nil || cb != nil && !bytes.Equal(acc.ChannelBindings, ChannelBindingsHash(cb)) {
						t.Errorf("channel bindings %x", acc.ChannelBindings)
					}
					// A bare request gets a bare answer, SPNEGO a NegTokenResp.
					if got := acc.Token[0] == 0xa1; got != spnego {
						t.Errorf("answer framed as SPNEGO: %v", got)
					}
					for _, n := range sizes {
						exchange(t, c, s, n)
						exchange(t, s, c, n)
					}
				})
			}
		}
	}
}

// exchange seals an n-byte message on one side and opens it on the
// other, by Frame/Open and, where the format allows, Wrap/Unwrap.
func exchange(t *testing.T, from, to *Session, n int) {
	t.Helper()
	msg := bytes.Repeat([]byte("soap!"), n/5+1)[:n]
	body, err := from.Frame(msg)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 16 && bytes.Contains(body, msg) {
		t.Fatalf("%d bytes: the message shows in the sealed body", n)
	}
	got, err := to.Open(body)
	if err != nil {
		t.Fatalf("%d bytes: %v", n, err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("%d bytes: opened %d different bytes", n, len(got))
	}
	if _, isRC4 := from.seal.(*rc4Sealer); isRC4 {
		if _, err := from.Wrap(append([]byte(nil), msg...)); err == nil {
			t.Fatal("RC4-HMAC Wrap sealed without room for its padding")
		}
		return
	}
	data := append([]byte(nil), msg...)
	hdr, err := from.Wrap(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr) != from.HeaderSize() || len(data) != n {
		t.Fatalf("header %d bytes (HeaderSize %d), data %d of %d", len(hdr), from.HeaderSize(), len(data), n)
	}
	if got, err = to.Unwrap(hdr, data); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%d bytes: Unwrap: %v", n, err)
	}
}

func TestSealedMessagesAreChecked(t *testing.T) {
	for _, et := range testEnctypes {
		t.Run(et.name, func(t *testing.T) {
			c, s, _ := establish(t, et.id, InitOptions{})
			msg := []byte("<s:Envelope>a message of some length</s:Envelope>")
			seal := func(from *Session) (hdr, data []byte) {
				pad := from.seal.padding()
				data = append(append([]byte(nil), msg...), make([]byte, pad)...)
				hdr, err := from.wrap(data, pad)
				if err != nil {
					t.Fatal(err)
				}
				return hdr, data
			}
			for name, mutate := range map[string]func(h, d []byte){
				"data bit":   func(h, d []byte) { d[3] ^= 1 },
				"header bit": func(h, d []byte) { h[len(h)-1] ^= 1 },
			} {
				h, d := seal(c)
				mutate(h, d)
				if _, err := s.Unwrap(h, d); err == nil {
					t.Errorf("%s flipped: opened", name)
				}
				// The failed message consumed no sequence number: resend.
				s.mu.Lock()
				c.mu.Lock()
				c.sendSeq--
				c.mu.Unlock()
				s.mu.Unlock()
			}
			h, d := seal(c)
			if _, err := c.Unwrap(h, append([]byte(nil), d...)); err == nil {
				t.Error("a client opened its own message (reflected)")
			}
			if _, err := s.Unwrap(h, append([]byte(nil), d...)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Unwrap(h, d); err == nil {
				t.Error("a replayed message opened")
			}
			seal(c) // lost
			h, d = seal(c)
			if _, err := s.Unwrap(h, d); err == nil {
				t.Error("a message after a lost one opened")
			}
		})
	}
}

func TestAcceptRefuses(t *testing.T) {
	now := time.Now()
	for _, et := range testEnctypes {
		t.Run(et.name, func(t *testing.T) {
			f := newFixture(t, et.id, now.Add(-time.Hour))
			other := newFixtureKey(t, et.id, now.Add(-time.Hour), "another secret")
			emptyKT := keytab.New()
			expired := newFixture(t, et.id, now.Add(-11*time.Hour))
			cases := []struct {
				name string
				f    fixture
				a    Acceptor
				kind Kind
				code int32
			}{
				{"skew ahead", f, Acceptor{Keytab: f.kt, Now: func() time.Time { return now.Add(6 * time.Minute) }}, ClockSkew, 37},
				{"skew behind", f, Acceptor{Keytab: f.kt, Now: func() time.Time { return now.Add(-6 * time.Minute) }}, ClockSkew, 37},
				{"larger skew allowed", f, Acceptor{Keytab: f.kt, MaxSkew: 10 * time.Minute, Now: func() time.Time { return now.Add(6 * time.Minute) }}, -1, 0},
				{"expired ticket", expired, Acceptor{Keytab: expired.kt}, TicketExpired, 32},
				{"other key", f, Acceptor{Keytab: other.kt}, Refused, 41},
				{"no key", f, Acceptor{Keytab: emptyKT}, Refused, 45},
			}
			for _, c := range cases {
				for _, spnego := range []bool{false, true} {
					init, tok := c.f.initiate(t, now, InitOptions{SPNEGO: spnego})
					_, err := c.a.Accept(tok)
					if c.kind < 0 {
						if err != nil {
							t.Errorf("%s: %v", c.name, err)
						}
						continue
					}
					var ke *Error
					if !errors.As(err, &ke) || ke.Kind != c.kind {
						t.Errorf("%s: %v, want kind %v", c.name, err, c.kind)
						continue
					}
					if got := ParseErrorToken(ke.Token); got == nil || got.Kind != c.kind && !(c.kind == Refused && got.Kind == Refused) {
						t.Errorf("%s: the KRB-ERROR token reads as %v", c.name, got)
					}
					if _, err := init.Complete(ke.Token); !errors.As(err, &ke) || ke.Kind != c.kind {
						t.Errorf("%s: Complete(KRB-ERROR) = %v", c.name, err)
					} else if !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprintf("(%d)", c.code))) {
						t.Errorf("%s: %v does not name error %d", c.name, err, c.code)
					}
				}
			}
			// A replayed AP-REQ.
			_, tok := f.initiate(t, now, InitOptions{})
			a := Acceptor{Keytab: f.kt}
			if _, err := a.Accept(tok); err != nil {
				t.Fatal(err)
			}
			var ke *Error
			if _, err := a.Accept(tok); !errors.As(err, &ke) || ke.Kind != Refused || ParseErrorToken(ke.Token) == nil {
				t.Errorf("replay: %v", err)
			}
		})
	}
}

func TestCompleteRefusesAnotherAnswer(t *testing.T) {
	now := time.Now()
	f := newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, now.Add(-time.Minute))
	a := &Acceptor{Keytab: f.kt}
	first, tok1 := f.initiate(t, now, InitOptions{})
	_, tok2 := f.initiate(t, now, InitOptions{})
	if _, err := a.Accept(tok1); err != nil {
		t.Fatal(err)
	}
	acc2, err := a.Accept(tok2)
	if err != nil {
		t.Fatal(err)
	}
	var ke *Error
	if _, err := first.Complete(acc2.Token); !errors.As(err, &ke) || ke.Kind != Refused {
		t.Errorf("Complete with another context's AP-REP: %v", err)
	}
	for _, junk := range [][]byte{nil, {0x60}, {0xa1, 0}, []byte("not a token")} {
		if _, err := first.Complete(junk); !errors.As(err, &ke) || ke.Kind != Refused {
			t.Errorf("Complete(%q): %v", junk, err)
		}
		if _, err := a.Accept(junk); !errors.As(err, &ke) || ke.Kind != Refused || ke.Token != nil {
			t.Errorf("Accept(%q): %v", junk, err)
		}
	}
}

func TestChannelBindingsHash(t *testing.T) {
	// RFC 2744's struct with no addresses: 16 zero bytes, the data's
	// length (little-endian) and the data. Values from Python's hashlib.
	for data, want := range map[string]string{
		"":                         "441018525208457705bf09a8ee3c1093",
		"tls-server-end-point:abc": "feb0fffbc725957540b287e8c838dfd9",
	} {
		if got := fmt.Sprintf("%x", ChannelBindingsHash([]byte(data))); got != want {
			t.Errorf("%q: %s, want %s", data, got, want)
		}
	}
}
