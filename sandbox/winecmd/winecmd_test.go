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

	"github.com/gsd-deploy/gsd/agent/bootstrap"
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
	const root = `C:\ProgramData\gsd`
	dest := root + `\bin\` + sha + `\gsd-agent.exe`
	destUnix, _ := h.UnixPath(dest)

	_, stderr, code := runBootstrap(t, h, bootstrap.Params{Root: root, Path: dest, SHA256: strings.Repeat("a", 64)}, data)
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

	stdout, _, code := runBootstrap(t, h, bootstrap.Params{Root: root, Path: dest, SHA256: sha}, data)
	if code != 0 || strings.TrimSpace(stdout) != bootstrap.OKPrefix+sha {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	got, err := os.ReadFile(destUnix)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("destination: %v", err)
	}
	// Again over the same file: kept, its input dropped, still exit 0;
	// with nothing to write, that is how a file is checked before it runs.
	for _, in := range [][]byte{data, nil} {
		if stdout, _, code := runBootstrap(t, h, bootstrap.Params{Root: root, Path: dest, SHA256: sha}, in); code != 0 || strings.TrimSpace(stdout) != bootstrap.OKPrefix+sha {
			t.Fatalf("run over the file in place: exit %d, %q", code, stdout)
		}
	}
	// Other bytes under its name: said, and with nothing to write, refused.
	if err := os.WriteFile(destUnix, []byte("planted"), 0o755); err != nil {
		t.Fatal(err)
	}
	stdout, _, code = runBootstrap(t, h, bootstrap.Params{Root: root, Path: dest, SHA256: sha}, nil)
	if code != bootstrap.ExitHashMismatch || !strings.Contains(stdout, dest+" had SHA-256 ") {
		t.Fatalf("check of a planted file: exit %d, %q", code, stdout)
	}
	if stdout, _, code = runBootstrap(t, h, bootstrap.Params{Root: root, Path: dest, SHA256: sha}, data); code != 0 || !strings.Contains(stdout, bootstrap.OKPrefix+sha) {
		t.Fatalf("install over a planted file: exit %d, %q", code, stdout)
	}
	if got, _ := os.ReadFile(destUnix); !bytes.Equal(got, data) {
		t.Fatal("the planted file was not replaced")
	}
}

// A root another user owns (Wine shows a file's Unix owner as its owner)
// is moved aside whole before anything is written, and the bootstrap says
// so; the new root holds only what it wrote.
func TestEmulatedBootstrapMovesForeignRootAside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a folder to another user needs root")
	}
	h := fakePrefix(t)
	const root = `C:\ProgramData\gsd`
	rootUnix, _ := h.UnixPath(root)
	data := []byte("gsd-agent")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	dest := root + `\bin\` + sha + `\gsd-agent.exe`
	destUnix, _ := h.UnixPath(dest)
	if err := os.MkdirAll(filepath.Dir(destUnix), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(destUnix, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(rootUnix, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := runBootstrap(t, h, bootstrap.Params{Root: root, Path: dest, SHA256: sha}, nil)
	if code != bootstrap.ExitHashMismatch || !strings.Contains(stdout, "moved "+root+" aside") || !strings.Contains(stdout, "unix user 65534") {
		t.Fatalf("exit %d, %q", code, stdout)
	}
	if _, err := os.Stat(destUnix); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the binary in the foreign root is still where it would run")
	}
	if uid, _ := ownerUID(rootUnix); uid != os.Geteuid() {
		t.Fatalf("the new root is owned by %d", uid)
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

// escapePrefix is fakePrefix with the links Wine makes by default, aimed at
// a directory standing in for the rest of the machine: Z: and a profile
// folder, plus a link planted inside C:.
func escapePrefix(t *testing.T) (h *Host, outside string) {
	t.Helper()
	h = fakePrefix(t)
	outside = t.TempDir()
	links := map[string]string{
		"dosdevices/z:":                outside,
		"dosdevices/com1":              "/dev/ttyS0",
		"drive_c/users/root/Desktop":   outside,
		"drive_c/ProgramData/planted":  outside,
		"drive_c/users/root/Documents": "../../../../" + filepath.Base(outside),
	}
	for link, target := range links {
		p := filepath.Join(h.Prefix, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return h, outside
}

func TestUnixPathStaysInPrefix(t *testing.T) {
	h, outside := escapePrefix(t)
	sum := sha256.Sum256([]byte("x"))
	sha := hex.EncodeToString(sum[:])
	for _, bad := range []string{
		`Z:\dir\x`,
		`z:\` + strings.TrimPrefix(filepath.ToSlash(outside), "/") + `\x`,
		`C:\users\root\Desktop\x`,
		`C:\users\root\Desktop\new\dir\x`,
		`C:\ProgramData\planted\x`,
		`c:\PROGRAMDATA\PLANTED\x`,
	} {
		if p, err := h.UnixPath(bad); err == nil {
			t.Errorf("%s accepted as %s", bad, p)
		}
		line, err := bootstrap.CommandLine(bootstrap.Params{Root: bad[:strings.LastIndex(bad, `\`)], Path: bad, SHA256: sha})
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		proc, err := h.Start(Command{Line: line, Shell: true, Stderr: &errb})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = proc.Stdin().Write([]byte("x")) // fails once the bootstrap has given up
		proc.Stdin().Close()
		code, stderr := proc.Wait(), errb.String()
		if code != bootstrap.ExitFailed || !strings.Contains(stderr, "outside") && !strings.Contains(stderr, "not mapped") {
			t.Errorf("bootstrap to %s: exit %d, %q", bad, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("the bootstrap wrote outside the prefix: %v", entries)
	}
	if _, err := h.UnixPath(`C:\ProgramData\gsd\x.exe`); err != nil {
		t.Fatalf("a plain C: path: %v", err)
	}
}

func TestIsolatePrefix(t *testing.T) {
	h, outside := escapePrefix(t)
	if err := IsolatePrefix(h.Prefix); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"dosdevices/z:", "dosdevices/com1"} {
		if _, err := os.Lstat(filepath.Join(h.Prefix, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(h.Prefix, "dosdevices", "c:")); err != nil {
		t.Errorf("C: went too: %v", err)
	}
	for _, d := range []string{"Desktop", "Documents"} {
		fi, err := os.Lstat(filepath.Join(h.Prefix, "drive_c/users/root", d))
		if err != nil || !fi.IsDir() {
			t.Errorf("%s is not a real directory: %v", d, err)
		}
	}
	// The profile folder now takes files itself.
	if p, err := h.UnixPath(`C:\users\root\Desktop\x`); err != nil || !strings.HasPrefix(p, h.Prefix) {
		t.Errorf("Desktop after isolation: %s, %v", p, err)
	}
	if _, err := h.UnixPath(`Z:\x`); err == nil {
		t.Error("Z: still mapped")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("isolation touched the outside: %v", entries)
	}
}
