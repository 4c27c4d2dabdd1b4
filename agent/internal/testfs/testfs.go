package testfs

import (
	"os"
	"testing"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
)

// TempDir returns a new directory removed when the test ends.
func TempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "gsd-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := atomicfile.RemoveTree(dir); err != nil {
			tb.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}
