//go:build !windows

package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the key's name under the root on hosts without DPAPI.
const KeyFile = "seal.key"

// ForMachine returns a sealer whose key lives in root/seal.key, readable
// by the agent's user only, made on first use.
func ForMachine(root string) Sealer { return &keyFile{path: filepath.Join(root, KeyFile)} }

type keyFile struct{ path string }

func (k *keyFile) aead() (cipher.AEAD, error) {
	key, err := os.ReadFile(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return k.aead() // made by another agent meanwhile
		}
		if err != nil {
			return nil, err
		}
		_, werr := f.Write(key)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(k.path)
			return nil, werr
		}
	} else if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%s: a key of %d bytes, want 32", k.path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (k *keyFile) Seal(plain []byte) ([]byte, error) {
	a, err := k.aead()
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return frame(a.Seal(nonce, nonce, plain, magic)), nil
}

func (k *keyFile) Open(sealed []byte) ([]byte, error) {
	b, err := unframe(sealed)
	if err != nil {
		return nil, err
	}
	a, err := k.aead()
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	if len(b) < a.NonceSize() {
		return nil, ErrNotSealed
	}
	plain, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], magic)
	if err != nil {
		return nil, fmt.Errorf("opening a sealed blob: %w", err)
	}
	return plain, nil
}
