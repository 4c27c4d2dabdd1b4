//go:build windows

package atomicfile

import "golang.org/x/sys/windows"

// replace asks for write-through so the rename is on disk when it returns;
// Windows cannot sync a directory handle, so this is how durability of the
// rename is obtained there.
func replace(from, to string) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	return windows.MoveFileEx(f, t, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}

func syncDir(string) error { return nil }
