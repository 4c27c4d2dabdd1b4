//go:build !windows

package atomicfile

import (
	"errors"
	"os"
)

func replace(from, to string) error { return os.Rename(from, to) }

// rename moves from to a name that does not exist yet.
func rename(from, to string) error {
	err := os.Rename(from, to)
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err // Rename wraps it again
	}
	return err
}

// syncDir makes the rename itself durable; POSIX only promises that once the
// directory is synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadFile is os.ReadFile; POSIX never blocks a rename for an open reader.
func ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }
