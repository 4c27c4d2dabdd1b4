package winecmd

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gsd-deploy/gsd/agent/bootstrap"
)

//go:embed launcher/launch.c
var launcherSource []byte

// LauncherVar carries the command line to the launcher.
const LauncherVar = "GSD_SANDBOX_CMDLINE"

// ErrPowerShell is what any PowerShell other than the bootstrap gets.
var ErrPowerShell = errors.New("the gsd sandbox does not run PowerShell: Wine's powershell.exe is a stub, " +
	"so only gsd's agent bootstrap script is emulated; run cmd.exe commands or the gsd agent instead")

// Host is one sandbox host's Windows side: a WINEPREFIX and the launcher.
type Host struct {
	Prefix string
	// Launcher is the Unix path of the built launcher (see BuildLauncher).
	Launcher string
	// Wine is the wine program; "wine" when empty.
	Wine string
	// User is the Windows user name the profile directory is named after.
	User string
}

// Command is one command to run.
type Command struct {
	// Line is the command line as the client sent it.
	Line string
	// Shell runs Line through "cmd.exe /c", as WinRS does unless
	// WINRS_SKIP_CMD_SHELL is set, and as Windows OpenSSH always does.
	Shell bool
	// Dir is a Windows working directory; the user's profile when empty.
	Dir string
	// Env adds environment variables.
	Env    map[string]string
	Stdout io.Writer
	Stderr io.Writer
}

// Signal is what a client can send to a running command.
type Signal int

// Signals of the WinRS protocol.
const (
	Terminate Signal = iota
	CtrlC
	CtrlBreak
)

// Process is a started command.
type Process interface {
	// Stdin is closed by the caller at end of input.
	Stdin() io.WriteCloser
	// Wait returns the exit code once the command has ended and all its
	// output has been written.
	Wait() int
	Signal(Signal)
}

// Start starts c. PowerShell other than the bootstrap returns
// ErrPowerShell.
func (h *Host) Start(c Command) (Process, error) {
	line := strings.TrimSpace(c.Line)
	program := firstToken(line)
	if bootstrap.IsPowerShell(program) {
		// Only the script gsd sends, byte for byte as gsd sends it, is
		// performed: it is the one whose syntax a real PowerShell grammar
		// checked (agent/bootstrap's tests), so anything else, however
		// close, would pass here and could fail on Windows.
		p, err := bootstrap.Parse(line)
		if err != nil {
			return nil, ErrPowerShell
		}
		if want, err := bootstrap.CommandLine(p); err != nil || line != want {
			return nil, ErrPowerShell
		}
		return h.startBootstrap(p, c)
	}
	full := line
	if c.Shell {
		full = "cmd.exe /c " + line
	}
	return h.startWine(full, c)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// firstToken is the program part of a Windows command line: up to the
// first blank, or the quoted string.
func firstToken(line string) string {
	if strings.HasPrefix(line, `"`) {
		if i := strings.IndexByte(line[1:], '"'); i >= 0 {
			return line[1 : i+1]
		}
		return line[1:]
	}
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i]
	}
	return line
}

// BuildLauncher compiles the launcher with mingw into dir and returns its
// path. The source is embedded so a gsd binary can set up a sandbox
// anywhere; the binary is never committed.
func BuildLauncher(dir string) (string, error) {
	cc, err := exec.LookPath("x86_64-w64-mingw32-gcc")
	if err != nil {
		return "", fmt.Errorf("the sandbox needs mingw to build its launcher (apt: gcc-mingw-w64-x86-64-win32): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := filepath.Join(dir, "launch.c")
	out := filepath.Join(dir, "gsd-sandbox-launch.exe")
	if old, err := os.ReadFile(src); err == nil && bytes.Equal(old, launcherSource) {
		if _, err := os.Stat(out); err == nil {
			return out, nil
		}
	}
	if err := os.WriteFile(src, launcherSource, 0o644); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	b, err := exec.Command(cc, "-municode", "-O2", "-s", "-o", tmp, src).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the launcher: %v: %s", err, b)
	}
	return out, os.Rename(tmp, out)
}
