//go:build !unix

package sandbox

import (
	"os"
	"syscall"
	"time"
)

func detached() *syscall.SysProcAttr { return nil }

func alive(pid int) bool { return false }

func stopProcess(pid int, grace time.Duration) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func killNow(pid int) { stopProcess(pid, 0) }

func lockAddresses() (func(), error) { return func() {}, nil }
