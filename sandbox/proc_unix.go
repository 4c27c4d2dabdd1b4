//go:build unix

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// stopProcess asks pid to stop, waits, then kills it, as long as same
// still says pid is the process meant: a PID in a state file may by now
// belong to something else.
func stopProcess(pid int, grace time.Duration, same func() bool) {
	if !alive(pid) || !same() {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) && same() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// procArgs is pid's command line; ok is false when it cannot be read.
func procArgs(pid int) (args []string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), true
}

// haveProc reports whether this system has Linux's /proc to check
// processes by.
func haveProc() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

// isServe reports whether pid is the serve process of the host in dir:
// its command line ends "sandbox serve DIR" (run directly or, for a
// moment before it execs, through "ip netns exec"). Without /proc there is
// no way to tell, and the PID is trusted.
func isServe(pid int, dir string) bool {
	if !haveProc() {
		return true
	}
	args, ok := procArgs(pid)
	n := len(args)
	return ok && n >= 3 && args[n-3] == "sandbox" && args[n-2] == "serve" && args[n-1] == dir
}

// isKDC reports whether pid is the krb5kdc of the realm in dir: its
// command line names the realm's pid file there.
func isKDC(pid int, dir string) bool {
	if !haveProc() {
		return true
	}
	args, ok := procArgs(pid)
	if !ok || len(args) == 0 || filepath.Base(args[0]) != "krb5kdc" {
		return false
	}
	for _, a := range args {
		if strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}

// sessionOf is the session ID of pid, from /proc/PID/stat.
func sessionOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name in parentheses may hold spaces; fields after it
	// are: state, ppid, pgrp, session.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return 0, false
	}
	sid, err := strconv.Atoi(f[3])
	return sid, err == nil
}

// sweepSession ends what is left of a serve process's session (serve is
// its leader): sshd and anything else it started that outlived it, as
// after a kill -9. The kernel does not reuse a PID while a session of that
// ID has members, so the session ID identifies them; each must also name
// the host's directory in its command line or environment.
func sweepSession(sid int, dir string) {
	if sid <= 0 || !haveProc() {
		return
	}
	find := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if s, ok := sessionOf(pid); !ok || s != sid {
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if strings.Contains(string(cmdline), dir+"/") || strings.Contains(string(cmdline), dir+"\x00") ||
				strings.HasSuffix(string(cmdline), dir) || strings.Contains(string(environ), dir+"/") {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	sig := syscall.SIGTERM
	for attempt := 0; attempt < 60; attempt++ {
		pids := find()
		if len(pids) == 0 {
			return
		}
		if attempt == 40 {
			sig = syscall.SIGKILL
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func killNow(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// lockAddresses serialises address planning between sandboxes started at
// the same time (two test runs, say): from choosing a subnet or loopback
// addresses until the hosts listen on them. The lock file is shared and
// never removed; the lock dies with the process.
func lockAddresses() (func(), error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("gsd-sandbox-addresses-%d.lock", os.Geteuid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// lockDir takes DIR/.lock (making DIR) for the whole of an Up or Down, so
// two of them in one directory run one after the other instead of
// destroying each other's state. Down removes the lock file with the rest
// of the directory; a process that was waiting for the lock then holds it
// on a removed file, so it checks the file it locked is still the one at
// the path and otherwise starts again.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, lockFile)
	for {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() { f.Close() }, nil
		}
		f.Close()
	}
}
