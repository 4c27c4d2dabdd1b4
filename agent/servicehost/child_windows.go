//go:build windows

package servicehost

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/windows"
)

var (
	kernel32     = windows.NewLazySystemDLL("kernel32.dll")
	procAlloc    = kernel32.NewProc("AllocConsole")
	procGenerate = kernel32.NewProc("GenerateConsoleCtrlEvent")
	consoleOnce  sync.Once
)

// prepareChild puts the program in its own process group on the service
// host's console. Ctrl-Break can only be delivered through a console, and a
// service starts without one, so the host allocates a (hidden) one first;
// the group lets the event reach the program without reaching the host.
func prepareChild(cmd *exec.Cmd) {
	consoleOnce.Do(func() { procAlloc.Call() })
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_NEW_PROCESS_GROUP,
		HideWindow:    true,
	}
}

// interruptChild sends Ctrl-Break to the program's process group.
func interruptChild(cmd *exec.Cmd) error {
	if r, _, err := procGenerate.Call(windows.CTRL_BREAK_EVENT, uintptr(cmd.Process.Pid)); r == 0 {
		return fmt.Errorf("GenerateConsoleCtrlEvent: %v", err)
	}
	return nil
}

func lookupEnvKey(m map[string]string, name string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}
