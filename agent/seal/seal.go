package seal

import (
	"bytes"
	"errors"
)

// Sealer seals and opens secret bytes for this machine.
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// magic opens every sealed blob, so a file that is not one (or one of a
// scheme this agent does not know) is refused rather than misread.
var magic = []byte("gsd-sealed-1\n")

// ErrNotSealed is returned for bytes that are not a sealed blob.
var ErrNotSealed = errors.New("not a sealed blob of this agent")

func frame(b []byte) []byte { return append(append([]byte{}, magic...), b...) }

func unframe(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, magic) {
		return nil, ErrNotSealed
	}
	return b[len(magic):], nil
}
