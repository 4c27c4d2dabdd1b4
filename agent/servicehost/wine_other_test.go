//go:build !windows

package servicehost

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func onWine() bool { return false }

// processAlive reports whether pid runs; a zombie (dead, not yet reaped by
// an init that may never reap it) counts as gone.
func processAlive(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) {
			return b[i+2] != 'Z'
		}
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
