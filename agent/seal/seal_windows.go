//go:build windows

package seal

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// entropy binds blobs to gsd: DPAPI at machine scope opens a blob for any
// process on the machine that also presents this entropy.
var entropy = []byte("gsd release secrets")

// ForMachine returns the DPAPI sealer. root is unused on Windows: the key
// is the machine's own.
func ForMachine(root string) Sealer { return dpapi{} }

type dpapi struct{}

func blob(b []byte) *windows.DataBlob {
	if len(b) == 0 {
		return &windows.DataBlob{}
	}
	return &windows.DataBlob{Size: uint32(len(b)), Data: &b[0]}
}

func take(out *windows.DataBlob) []byte {
	defer windows.LocalFree(windows.Handle(unsafe.Pointer(out.Data)))
	return append([]byte(nil), unsafe.Slice(out.Data, out.Size)...)
}

// DPAPI refuses to seal nothing (ERROR_INVALID_DATA), so every plaintext
// is sealed behind one leading byte, which Open takes off again.
const lead = 1

func (dpapi) Seal(plain []byte) ([]byte, error) {
	var out windows.DataBlob
	flags := uint32(windows.CRYPTPROTECT_LOCAL_MACHINE | windows.CRYPTPROTECT_UI_FORBIDDEN)
	in := append([]byte{lead}, plain...)
	if err := windows.CryptProtectData(blob(in), nil, blob(entropy), 0, nil, flags, &out); err != nil {
		return nil, fmt.Errorf("sealing with DPAPI: %w", err)
	}
	return frame(take(&out)), nil
}

func (dpapi) Open(sealed []byte) ([]byte, error) {
	b, err := unframe(sealed)
	if err != nil {
		return nil, err
	}
	var out windows.DataBlob
	if err := windows.CryptUnprotectData(blob(b), nil, blob(entropy), 0, nil, windows.CRYPTPROTECT_UI_FORBIDDEN, &out); err != nil {
		return nil, fmt.Errorf("opening with DPAPI: %w", err)
	}
	plain := take(&out)
	if len(plain) == 0 || plain[0] != lead {
		return nil, ErrNotSealed
	}
	return plain[1:], nil
}
