//go:build !windows

package atomicfile

import "os"

func replace(from, to string) error { return os.Rename(from, to) }

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
