package seal

import (
	"bytes"
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"testing"
)

func TestSealRoundTripHidesAndChecks(t *testing.T) {
	s := ForMachine(testfs.TempDir(t))
	secret := []byte("hunter2-correct-horse")
	sealed, err := s.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed blob holds the secret in clear")
	}
	again, err := s.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one secret are equal: a blob must not tell equal secrets")
	}
	got, err := s.Open(sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.Open(tampered); err == nil {
		t.Error("a tampered blob opened")
	}
	if _, err := s.Open([]byte("plain text")); !errors.Is(err, ErrNotSealed) {
		t.Errorf("Open(plain) = %v, want ErrNotSealed", err)
	}
	empty, err := s.Seal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(empty); err != nil || len(got) != 0 {
		t.Errorf("empty round trip = %q, %v", got, err)
	}
}
