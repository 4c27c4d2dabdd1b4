package ntlm

import (
	"errors"
	"testing"

	ntlmssp "github.com/Azure/go-ntlmssp"
)

func handshake(t *testing.T, s *Server, user, password, domain string) (*Verified, error) {
	t.Helper()
	neg, err := ntlmssp.NewNegotiateMessage(domain, "")
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
	auth, err := ntlmssp.ProcessChallenge(ch, user, password)
	if err != nil {
		t.Fatalf("go-ntlmssp rejected the challenge: %v", err)
	}
	if !IsAuthenticate(auth) {
		t.Fatal("authenticate message not recognised")
	}
	return p.Authenticate(auth)
}

func TestGoNTLMSSPClient(t *testing.T) {
	s := &Server{Computer: "sandbox1", Account: Account{User: "gsd", Password: "s3cret pässword"}}
	v, err := handshake(t, s, "gsd", "s3cret pässword", "")
	if err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if v.User != "gsd" {
		t.Errorf("user = %q", v.User)
	}
	if _, err := handshake(t, s, "GSD", "s3cret pässword", ""); err != nil {
		t.Errorf("user names are case-insensitive on Windows: %v", err)
	}
	if _, err := handshake(t, s, "gsd", "wrong", ""); !errors.Is(err, ErrDenied) {
		t.Errorf("wrong password: err = %v, want ErrDenied", err)
	}
	if _, err := handshake(t, s, "other", "s3cret pässword", ""); !errors.Is(err, ErrDenied) {
		t.Errorf("wrong user: err = %v, want ErrDenied", err)
	}
}

func TestReplayOnAnotherChallengeFails(t *testing.T) {
	s := &Server{Computer: "sandbox1", Account: Account{User: "gsd", Password: "pw"}}
	neg, _ := ntlmssp.NewNegotiateMessage("", "")
	ch, _, err := s.Challenge(neg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ntlmssp.ProcessChallenge(ch, "gsd", "pw")
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := s.Challenge(neg)
	if _, err := other.Authenticate(auth); !errors.Is(err, ErrDenied) {
		t.Fatalf("an AUTHENTICATE for another challenge was accepted: %v", err)
	}
}

func TestMalformedMessages(t *testing.T) {
	s := &Server{Computer: "h", Account: Account{User: "u", Password: "p"}}
	neg, _ := ntlmssp.NewNegotiateMessage("", "")
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
	s := &Server{Computer: "h", Account: Account{User: "u", Password: "p"}}
	neg, _ := ntlmssp.NewNegotiateMessage("", "")
	ch, p, _ := s.Challenge(neg)
	auth, _ := ntlmssp.ProcessChallenge(ch, "u", "p")
	f.Add(auth)
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = p.Authenticate(msg)
	})
}
