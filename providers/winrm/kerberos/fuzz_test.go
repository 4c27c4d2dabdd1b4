package kerberos

import (
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// The fuzz targets feed whatever a peer could send to the parsers: the
// first token (Accept), the answer (Complete, ParseErrorToken) and
// sealed messages (Unwrap). None may panic, and every failure is an
// *Error or a plain refusal, never a message.

func FuzzAccept(f *testing.F) {
	now := time.Now()
	fx := newFixture(f, etypeID.AES256_CTS_HMAC_SHA1_96, now.Add(-time.Minute))
	for _, spnego := range []bool{false, true} {
		_, tok := fx.initiate(f, now, InitOptions{SPNEGO: spnego, ChannelBindings: []byte("tls-server-end-point:x")})
		f.Add(tok)
	}
	f.Add([]byte{0x60, 0x03, 0x06, 0x01, 0x00})
	f.Add([]byte{0xa1, 0x00})
	a := &Acceptor{Keytab: fx.kt}
	f.Fuzz(func(t *testing.T, token []byte) {
		acc, err := a.Accept(token)
		var ke *Error
		if err != nil && !errors.As(err, &ke) {
			t.Fatalf("error not an *Error: %v", err)
		}
		if err == nil && (acc.Session == nil || acc.Client == "") {
			t.Fatal("accepted without a session or a client")
		}
	})
}

func FuzzComplete(f *testing.F) {
	now := time.Now()
	fx := newFixture(f, etypeID.AES128_CTS_HMAC_SHA1_96, now.Add(-time.Minute))
	init, tok := fx.initiate(f, now, InitOptions{SPNEGO: true})
	acc, err := (&Acceptor{Keytab: fx.kt}).Accept(tok)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(acc.Token)
	_, tok = fx.initiate(f, now, InitOptions{})
	_, err = (&Acceptor{Keytab: fx.kt, Now: func() time.Time { return now.Add(time.Hour) }}).Accept(tok)
	var ke *Error
	if !errors.As(err, &ke) || ke.Token == nil {
		f.Fatalf("no KRB-ERROR: %v", err)
	}
	f.Add(ke.Token)
	f.Fuzz(func(t *testing.T, token []byte) {
		i := *init
		if _, err := i.Complete(token); err != nil && !errors.As(err, new(*Error)) {
			t.Fatalf("error not an *Error: %v", err)
		}
		_ = ParseErrorToken(token)
	})
}

func FuzzUnwrap(f *testing.F) {
	sessions := map[bool][2]*Session{}
	for _, rc4 := range []bool{false, true} {
		et := int32(etypeID.AES256_CTS_HMAC_SHA1_96)
		if rc4 {
			et = etypeID.RC4_HMAC
		}
		c, s, _ := establish(f, et, InitOptions{})
		sessions[rc4] = [2]*Session{c, s}
		for _, msg := range []string{"", "x", "<s:Envelope/>"} {
			pad := c.seal.padding()
			data := append([]byte(msg), make([]byte, pad)...)
			hdr, err := c.wrap(data, pad)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(rc4, hdr, data)
		}
	}
	f.Fuzz(func(t *testing.T, rc4 bool, header, data []byte) {
		s := sessions[rc4][1]
		// The sequence check comes last, after parsing, decryption and
		// the checksum, so fuzzed tokens reach all of those.
		if msg, err := s.Unwrap(header, data); err == nil && len(msg) > len(data) {
			t.Fatalf("opened %d bytes out of %d", len(msg), len(data))
		}
	})
}
