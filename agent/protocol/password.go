package protocol

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// PasswordHash stands for the account password the agent last handed to
// the service manager, so that gsd can tell a changed password at plan time
// without sending one: the planner hashes the configured password with Salt
// and compares. SHA256 is hex(SHA-256(Salt || password)). The salt is random
// per service and renewed with every new password, so equal passwords of two
// services, or of one service over time, do not show as equal hashes.
//
// The agent keeps it in its state and reports it in facts only; plans carry
// neither, since a hash lets a guess be checked offline.
type PasswordHash struct {
	Salt   string `json:"salt"`
	SHA256 string `json:"sha256"`
}

// HashPassword is hex(SHA-256(salt || password)).
func HashPassword(salt, password string) string {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte(password))
	return hex.EncodeToString(h.Sum(nil))
}

// NewPasswordHash hashes password with a fresh random salt.
func NewPasswordHash(password string) (PasswordHash, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return PasswordHash{}, err
	}
	s := hex.EncodeToString(salt[:])
	return PasswordHash{Salt: s, SHA256: HashPassword(s, password)}, nil
}

// Matches reports whether password is the one h stands for.
func (h PasswordHash) Matches(password string) bool {
	return subtle.ConstantTimeCompare([]byte(HashPassword(h.Salt, password)), []byte(h.SHA256)) == 1
}
