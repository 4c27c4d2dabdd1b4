//go:build windows

package servicehost

import (
	"golang.org/x/sys/windows"

	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

func onWine() bool { return wine.Detected() }

// processAlive reports whether pid runs; a handle can outlive the process,
// so the exit code decides.
func processAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return err == windows.ERROR_ACCESS_DENIED
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return true
	}
	return code == 259 // STILL_ACTIVE
}
