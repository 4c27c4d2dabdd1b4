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

func (dpapi) Seal(plain []byte) ([]byte, error) {
	var out windows.DataBlob
	flags := uint32(windows.CRYPTPROTECT_LOCAL_MACHINE | windows.CRYPTPROTECT_UI_FORBIDDEN)
	if err := windows.CryptProtectData(blob(plain), nil, blob(entropy), 0, nil, flags, &out); err != nil {
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
	return take(&out), nil
}
