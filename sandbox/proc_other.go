//go:build !unix

package sandbox

import (
	"os"
	"syscall"
	"time"
)

func detached() *syscall.SysProcAttr { return nil }

func alive(pid int) bool { return false }

func stopProcess(pid int, grace time.Duration, same func() bool) {
	if !same() {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func killNow(pid int) { stopProcess(pid, 0, func() bool { return true }) }

// Without /proc there is no telling; only Unix runs hosts anyway.
func isServe(pid int, dir string) bool { return false }

func sweepSession(sid int, dir string) {}

func lockAddresses() (func(), error) { return func() {}, nil }

func lockDir(dir string) (func(), error) { return func() {}, os.MkdirAll(dir, 0o700) }

func isKDC(pid int, dir string) bool { return false }
