package sandboxtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/winecmd"
)

// SystemPython is Debian's interpreter, the one python3-winrm is
// installed for; a python3 earlier on PATH may lack it.
const SystemPython = "/usr/bin/python3"

// Required reports whether missing prerequisites must fail the test.
func Required() bool { return os.Getenv("GSD_REQUIRE_SANDBOX") == "1" }

// Missing skips the test, or fails it under GSD_REQUIRE_SANDBOX=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("GSD_REQUIRE_SANDBOX=1 but a prerequisite is missing: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// RequireWine checks for Wine, the template prefix and mingw. Under
// go test -short (make unit) tests that need Wine are skipped: their own
// make targets (test-sandbox, test-transport, test-e2e) run them in full,
// with GSD_REQUIRE_SANDBOX=1 so that nothing is skipped there.
func RequireWine(t testing.TB) {
	t.Helper()
	if testing.Short() && !Required() {
		t.Skip("needs Wine: run by make test-sandbox, test-transport and test-e2e, not under -short")
	}
	if err := winecmd.CheckTemplate(); err != nil {
		Missing(t, "%v", err)
	}
	if _, err := exec.LookPath("x86_64-w64-mingw32-gcc"); err != nil {
		Missing(t, "mingw (apt: gcc-mingw-w64-x86-64-win32)")
	}
}

// RequirePywinrm checks that Debian's python3-winrm can be imported.
func RequirePywinrm(t testing.TB) {
	t.Helper()
	if err := exec.Command(SystemPython, "-c", "import winrm, requests_ntlm").Run(); err != nil {
		Missing(t, "python3-winrm for %s: %v", SystemPython, err)
	}
}

// RequireRoot checks for root, which network namespaces and sshd need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root (network namespaces)")
	}
}

var (
	launcherOnce sync.Once
	launcherPath string
	launcherErr  error
)

// Launcher builds the launcher once per test binary.
func Launcher(t testing.TB) string {
	t.Helper()
	launcherOnce.Do(func() {
		// A fixed directory: BuildLauncher reuses a build of the same
		// source, so test binaries do not each compile and leave one.
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("gsd-sandbox-launcher-%d", os.Geteuid()))
		launcherPath, launcherErr = winecmd.BuildLauncher(dir)
	})
	if launcherErr != nil {
		t.Fatal(launcherErr)
	}
	return launcherPath
}

// WineHost clones the template into a temporary directory and returns a
// host on it; cleanup stops its wineserver and removes the prefix.
func WineHost(t testing.TB) *winecmd.Host {
	t.Helper()
	RequireWine(t)
	sweepStale()
	dir, err := os.MkdirTemp("", testPrefixPattern)
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "prefix")
	if err := winecmd.ClonePrefix(prefix); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	h := &winecmd.Host{Prefix: prefix, Launcher: Launcher(t)}
	t.Cleanup(func() {
		_ = winecmd.StopWineserver(prefix)
		os.RemoveAll(dir)
	})
	// A test killed at its timeout runs no cleanup; its wineserver then
	// goes away by itself, and sweepStale removes the prefix next time.
	if err := winecmd.StartWineserverLinger(prefix, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.Warm(); err != nil {
		t.Fatal(err)
	}
	return h
}

const testPrefixPattern = "gsd-sandbox-test-"

// sweepStale removes test prefixes (700 MB each) that a killed test run
// left: older than an hour and used by no process.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), testPrefixPattern+"*"))
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil || time.Since(st.ModTime()) < time.Hour || inUse(d) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// inUse reports whether any process names dir in its command line or its
// WINEPREFIX.
func inUse(dir string) bool {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", p.Name(), f))
			if err == nil && bytes.Contains(b, []byte(dir+"/")) {
				return true
			}
		}
	}
	return false
}
