//go:build windows

package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// replace asks for write-through so the rename is on disk when it returns;
// Windows cannot sync a directory handle, so this is how durability of the
// rename is obtained there. Windows refuses to replace a file another
// process has open without FILE_SHARE_DELETE (an editor, a scanner, a
// client reading state.json over SMB), usually for a moment only, so the
// replace is retried briefly on sharing and access errors.
func replace(from, to string) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	return withRetry(func() error {
		return windows.MoveFileEx(f, t, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
	}, sharingError, time.Sleep)
}

// rename moves from to a name that must not exist yet, with the same
// retries as replace.
func rename(from, to string) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	return withRetry(func() error {
		return windows.MoveFileEx(f, t, windows.MOVEFILE_WRITE_THROUGH)
	}, sharingError, time.Sleep)
}

// sharingError is true for the errors another process's open handle causes.
func sharingError(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) ||
		errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
		errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}

func syncDir(string) error { return nil }

// ReadFile reads path like os.ReadFile, but opens it with FILE_SHARE_DELETE
// so that reading one of the agent's files never makes another agent's
// atomic replace or lock break of it fail (os.Open does not share delete).
func ReadFile(path string) ([]byte, error) {
	f, err := openShared(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func openShared(path string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}
