//go:build !windows

package state

import (
	"errors"
	"syscall"
)

// processAlive reports whether pid is a running process; EPERM still means
// it exists, just under another user.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
