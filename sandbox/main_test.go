package sandbox_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-deploy/gsd/sandbox"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

// TestMain lets this test binary stand in for gsd as the program Up
// starts for each host (`<exe> sandbox serve DIR`) and as sshd's forced
// command (`<exe> sandbox exec DIR`), so no gsd binary has to be built
// first. (It lives here rather than in sandboxtest, which the packages
// sandbox itself imports use in their tests.)
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "sandbox" {
		os.Exit(sandbox.HelperMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// upSandbox starts a sandbox in a temporary directory (o.Dir and o.HCLDir
// are filled in when empty) and takes it down when the test ends.
func upSandbox(t testing.TB, o sandbox.Options) *sandbox.State {
	t.Helper()
	sandboxtest.RequireWine(t)
	if o.SSH {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			sandboxtest.Missing(t, "Debian's openssh-server for -ssh hosts")
		}
	}
	dir, err := os.MkdirTemp("", "gsd-sandbox-up-")
	if err != nil {
		t.Fatal(err)
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(dir, "sandbox")
	}
	if o.HCLDir == "" {
		o.HCLDir = dir
	}
	st, err := sandbox.Up(o)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sandbox.Down(o.Dir, nil); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
		os.RemoveAll(dir)
	})
	return st
}
