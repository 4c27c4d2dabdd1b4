package winecmd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/bootstrap"
)

// fakePrefix has the layout Wine gives a prefix: drive_c and a dosdevices
// link for C:, enough for path mapping and the emulated bootstrap.
func fakePrefix(t *testing.T) *Host {
	t.Helper()
	p := t.TempDir()
	for _, d := range []string{"drive_c/ProgramData", "drive_c/windows", "dosdevices"} {
		if err := os.MkdirAll(filepath.Join(p, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../drive_c", filepath.Join(p, "dosdevices", "c:")); err != nil {
		t.Fatal(err)
	}
	return &Host{Prefix: p}
}

func TestUnixPath(t *testing.T) {
	h := fakePrefix(t)
	got, err := h.UnixPath(`c:\PROGRAMDATA\gsd\x.exe`)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(h.Prefix, "drive_c", "ProgramData", "gsd", "x.exe"); got != want {
		t.Errorf("got %s, want %s (case matched to the existing directory)", got, want)
	}
	for _, bad := range []string{`relative\x`, `C:\a\..\..\etc\passwd`, `C:\a\.\b`, `C:\file.txt:stream`, `Q:\x`, `C:\a\b?`} {
		if _, err := h.UnixPath(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func runBootstrap(t *testing.T, h *Host, p bootstrap.Params, data []byte) (string, string, int) {
	t.Helper()
	line, err := bootstrap.CommandLine(p)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	proc, err := h.Start(Command{Line: line, Shell: true, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	// Several writes, as several WinRS Sends arrive.
	for len(data) > 0 {
		n := min(len(data), 1000)
		if _, err := proc.Stdin().Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	proc.Stdin().Close()
	code := proc.Wait()
	return out.String(), errb.String(), code
}

func TestEmulatedBootstrap(t *testing.T) {
	h := fakePrefix(t)
	data := bytes.Repeat([]byte("gsd-agent "), 5000)
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	dest := `C:\ProgramData\gsd\bin\` + sha + `\gsd-agent.exe`
	destUnix, _ := h.UnixPath(dest)

	_, stderr, code := runBootstrap(t, h, bootstrap.Params{Path: dest, SHA256: strings.Repeat("a", 64)}, data)
	if code != bootstrap.ExitHashMismatch || !strings.Contains(stderr, "mismatch") {
		t.Fatalf("wrong hash: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(destUnix); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file with the wrong hash was put in place")
	}
	entries, _ := os.ReadDir(filepath.Dir(destUnix))
	if len(entries) != 0 {
		t.Fatalf("partial files left: %v", entries)
	}

	stdout, _, code := runBootstrap(t, h, bootstrap.Params{Path: dest, SHA256: sha}, data)
	if code != 0 || strings.TrimSpace(stdout) != bootstrap.OKPrefix+sha {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	got, err := os.ReadFile(destUnix)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("destination: %v", err)
	}
	// Again over an existing file: replaced, still exit 0.
	if _, _, code := runBootstrap(t, h, bootstrap.Params{Path: dest, SHA256: sha}, data); code != 0 {
		t.Fatalf("second run: exit %d", code)
	}
}

func TestOtherPowerShellRefused(t *testing.T) {
	h := fakePrefix(t)
	for _, line := range []string{
		"powershell -Command Get-Service",
		`"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -NoProfile -File x.ps1`,
		"pwsh.exe -c 1",
	} {
		if _, err := h.Start(Command{Line: line, Shell: true}); !errors.Is(err, ErrPowerShell) {
			t.Errorf("%s: err = %v", line, err)
		}
	}
}
