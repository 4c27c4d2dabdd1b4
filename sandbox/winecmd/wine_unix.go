//go:build unix

package winecmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

type wineProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
	code  int
}

func (h *Host) startWine(line string, c Command) (Process, error) {
	wine := h.Wine
	if wine == "" {
		wine = "wine"
	}
	cmd := exec.Command(wine, h.Launcher)
	cmd.Env = append(h.environ(c.Env), LauncherVar+"="+line)
	dir := c.Dir
	if dir == "" {
		dir = `C:\users\` + h.user()
	}
	if d, err := h.UnixPath(dir); err == nil {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			cmd.Dir = d
		}
	}
	if cmd.Dir == "" {
		cmd.Dir = filepath.Join(h.Prefix, "drive_c")
	}
	cmd.Stdout = orDiscard(c.Stdout)
	cmd.Stderr = orDiscard(c.Stderr)
	// Its own process group, so a signal reaches every Windows process the
	// command started (Wine forks them from their parent).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A detached grandchild may hold the output pipes open forever;
	// Windows reports the command done when it exits, so do we.
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting wine: %w", err)
	}
	return &wineProcess{cmd: cmd, stdin: stdin}, nil
}

func (p *wineProcess) Stdin() io.WriteCloser { return p.stdin }

func (p *wineProcess) Wait() int {
	p.once.Do(func() {
		err := p.cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				// What Windows reports for a process ended by
				// TerminateProcess from WinRS.
				p.code = 1
			} else {
				p.code = ee.ExitCode()
			}
		case err != nil && p.cmd.ProcessState != nil:
			p.code = p.cmd.ProcessState.ExitCode()
		case err != nil:
			p.code = 1
		}
	})
	return p.code
}

func (p *wineProcess) Signal(s Signal) {
	if p.cmd.Process == nil {
		return
	}
	sig := syscall.SIGKILL
	switch s {
	case CtrlC:
		sig = syscall.SIGINT
	case CtrlBreak:
		sig = syscall.SIGQUIT
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Warm starts the prefix's system processes (services.exe, winedevice,
// plugplay) with /dev/null as their standard handles. Otherwise the first
// real command starts them, they inherit its output pipes, and a client
// waiting for end of output (an SSH session) waits for them forever.
func (h *Host) Warm() error {
	wine := h.Wine
	if wine == "" {
		wine = "wine"
	}
	cmd := exec.Command(wine, h.Launcher)
	cmd.Env = append(h.environ(nil), LauncherVar+"=cmd.exe /c exit 0")
	cmd.Dir = filepath.Join(h.Prefix, "drive_c")
	// No output capture: the processes it starts would hold a capture
	// pipe open just the same.
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("warming the Wine prefix: %w", err)
	}
	return nil
}

func (h *Host) environ(extra map[string]string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES", "DISPLAY", "WAYLAND_DISPLAY", LauncherVar:
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"WINEPREFIX="+h.Prefix,
		"WINEDEBUG=-all",
		// No desktop integration and no Mono/Gecko installer prompts.
		"WINEDLLOVERRIDES=winemenubuilder.exe=d;mscoree=;mshtml=",
	)
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

func (h *Host) user() string {
	if h.User != "" {
		return h.User
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}
