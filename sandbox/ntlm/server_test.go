package ntlm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bodgit/ntlmssp"
)

// client runs bodgit/ntlmssp, the client gsd uses, through a whole
// exchange with s.
func client(t testing.TB, s *Server, user, password string, cb *ntlmssp.ChannelBindings) (*ntlmssp.Client, *Verified, error) {
	t.Helper()
	domain, name, ok := strings.Cut(user, `\`)
	if !ok {
		domain, name = "", user
	}
	c, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(name, password), ntlmssp.SetDomain(domain), ntlmssp.SetVersion(&ntlmssp.Version{ProductMajorVersion: 10, NTLMRevisionCurrent: ntlmssp.NTLMSSPRevisionW2K3}))
	if err != nil {
		t.Fatal(err)
	}
	neg, err := c.Authenticate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !IsNegotiate(neg) {
		t.Fatal("negotiate message not recognised")
	}
	ch, p, err := s.Challenge(neg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.Authenticate(ch, cb)
	if err != nil {
		t.Fatalf("the client rejected the challenge: %v", err)
	}
	if !IsAuthenticate(auth) {
		t.Fatal("authenticate message not recognised")
	}
	v, err := p.Authenticate(auth)
	return c, v, err
}

var sandboxAccounts = []Account{{User: "gsd", Password: "s3cret pässword"}, {User: "other", Password: "pw2"}}

func TestClientHandshake(t *testing.T) {
	s := &Server{Computer: "sandbox1", Accounts: sandboxAccounts}
	_, v, err := client(t, s, "gsd", "s3cret pässword", nil)
	if err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if v.User != "gsd" || v.Session == nil || !v.Session.Sealing() {
		t.Errorf("verified %+v", v)
	}
	if _, v, err := client(t, s, "OTHER", "pw2", nil); err != nil || v.User != "OTHER" {
		t.Errorf("a second account, user names case-insensitive as on Windows: %v", err)
	}
	if _, _, err := client(t, s, `SANDBOX1\gsd`, "s3cret pässword", nil); err != nil {
		t.Errorf("machine-qualified name: %v", err)
	}
	for _, bad := range [][2]string{{"gsd", "wrong"}, {"gsd", "pw2"}, {"nobody", "s3cret pässword"}} {
		if _, _, err := client(t, s, bad[0], bad[1], nil); !errors.Is(err, ErrDenied) {
			t.Errorf("%s/%s: err = %v, want ErrDenied", bad[0], bad[1], err)
		}
	}
}

func TestChannelBindingsReachTheServer(t *testing.T) {
	s := &Server{Computer: "sandbox1", Accounts: sandboxAccounts}
	hash := bytes.Repeat([]byte{7}, 32)
	cb := &ntlmssp.ChannelBindings{ApplicationData: append([]byte("tls-server-end-point:"), hash...)}
	_, v, err := client(t, s, "gsd", "s3cret pässword", cb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.ChannelBindings, TLSChannelBindings(hash)) {
		t.Errorf("binding %x, want %x", v.ChannelBindings, TLSChannelBindings(hash))
	}
}

// Messages sealed by either side open on the other, in order, many in a
// row (the RC4 streams run on); a changed, replayed or dropped message
// does not.
func TestSealAndUnseal(t *testing.T) {
	s := &Server{Computer: "sandbox1", Accounts: sandboxAccounts}
	c, v, err := client(t, s, "gsd", "s3cret pässword", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, ss := c.SecuritySession(), v.Session
	for i, msg := range []string{"<s:Envelope>first</s:Envelope>", "", "second, longer " + string(bytes.Repeat([]byte("x"), 70000))} {
		sealed, sig, err := cs.Wrap([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) > 8 && bytes.Contains(sealed, []byte(msg[:8])) {
			t.Errorf("message %d travels in clear", i)
		}
		if err := ss.Unseal(sealed, sig); err != nil || string(sealed) != msg {
			t.Fatalf("client→server message %d: %v", i, err)
		}
		answer := []byte("answer to " + msg)
		want := string(answer)
		sig = ss.Seal(answer)
		got, err := cs.Unwrap(answer, sig)
		if err != nil || string(got) != want {
			t.Fatalf("server→client message %d: %v", i, err)
		}
	}

	sealed, sig, _ := cs.Wrap([]byte("tampered"))
	sealed[0] ^= 1
	if err := ss.Unseal(sealed, sig); !errors.Is(err, ErrSignature) {
		t.Errorf("a changed message: %v", err)
	}

	c, v, _ = client(t, s, "gsd", "s3cret pässword", nil)
	cs, ss = c.SecuritySession(), v.Session
	first, sig1, _ := cs.Wrap([]byte("one"))
	replay := append([]byte(nil), first...)
	if err := ss.Unseal(first, sig1); err != nil {
		t.Fatal(err)
	}
	if err := ss.Unseal(replay, sig1); !errors.Is(err, ErrSignature) {
		t.Errorf("a replayed message: %v", err)
	}
	_, _, _ = cs.Wrap([]byte("dropped"))
	third, sig3, _ := cs.Wrap([]byte("after a dropped one"))
	if err := ss.Unseal(third, sig3); !errors.Is(err, ErrSignature) {
		t.Errorf("a message after a dropped one: %v", err)
	}
}

// The MIC binds the three messages: an AUTHENTICATE message changed on
// the way is refused even with the right password.
func TestMICIsChecked(t *testing.T) {
	s := &Server{Computer: "sandbox1", Accounts: sandboxAccounts}
	c, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo("gsd", "s3cret pässword"))
	neg, _ := c.Authenticate(nil, nil)
	ch, p, err := s.Challenge(neg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.Authenticate(ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The workstation field (empty) is outside the NTLMv2 proof but
	// inside the MIC: clearing the SIGN flag is what a downgrade would do.
	auth[60] &^= flagSign
	if _, err := p.Authenticate(auth); !errors.Is(err, ErrDenied) {
		t.Fatalf("a changed AUTHENTICATE message was accepted: %v", err)
	}
}

func TestReplayOnAnotherChallengeFails(t *testing.T) {
	s := &Server{Computer: "sandbox1", Accounts: []Account{{User: "gsd", Password: "pw"}}}
	c, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo("gsd", "pw"))
	neg, _ := c.Authenticate(nil, nil)
	ch, _, err := s.Challenge(neg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.Authenticate(ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := s.Challenge(neg)
	if _, err := other.Authenticate(auth); !errors.Is(err, ErrDenied) {
		t.Fatalf("an AUTHENTICATE for another challenge was accepted: %v", err)
	}
}

func TestMalformedMessages(t *testing.T) {
	s := &Server{Computer: "h", Accounts: []Account{{User: "u", Password: "p"}}}
	c, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo("u", "p"))
	neg, _ := c.Authenticate(nil, nil)
	_, p, _ := s.Challenge(neg)
	bad := [][]byte{
		nil,
		[]byte("NTLMSSP\x00"),
		append([]byte("NTLMSSP\x00\x03\x00\x00\x00"), make([]byte, 60)...),
	}
	// An AUTHENTICATE whose user field points past the end.
	over := append([]byte("NTLMSSP\x00\x03\x00\x00\x00"), make([]byte, 60)...)
	over[36], over[40] = 200, 10
	bad = append(bad, over)
	for i, m := range bad {
		if _, err := p.Authenticate(m); err == nil {
			t.Errorf("message %d accepted", i)
		}
	}
	if _, _, err := s.Challenge([]byte("junk")); err == nil {
		t.Error("junk negotiate accepted")
	}
}

func FuzzAuthenticate(f *testing.F) {
	s := &Server{Computer: "h", Accounts: []Account{{User: "u", Password: "p"}}}
	c, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo("u", "p"))
	neg, _ := c.Authenticate(nil, nil)
	ch, p, _ := s.Challenge(neg)
	auth, _ := c.Authenticate(ch, nil)
	f.Add(auth)
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = p.Authenticate(msg)
	})
}

func FuzzUnseal(f *testing.F) {
	s := &Server{Computer: "h", Accounts: []Account{{User: "u", Password: "p"}}}
	c, v, err := client(f, s, "u", "p", nil)
	if err != nil {
		f.Fatal(err)
	}
	sealed, sig, _ := c.SecuritySession().Wrap([]byte("<s:Envelope/>"))
	f.Add(sealed, sig)
	f.Fuzz(func(t *testing.T, sealed, sig []byte) {
		_ = v.Session.Unseal(sealed, sig)
	})
}
