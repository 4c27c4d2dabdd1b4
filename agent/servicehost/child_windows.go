//go:build windows

package servicehost

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"unsafe"

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

// procTree is the program and the processes it starts, held in a job
// object that kills them all when it is terminated or its last handle is
// closed (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE). The program is assigned to
// the job right after it starts, so a process it starts in its first
// instants may escape; the wrapped programs gsd runs are not expected to.
// Without a job (the host refused one) only the program itself is killed.
type procTree struct {
	job  windows.Handle
	proc *os.Process
}

func startTree(cmd *exec.Cmd) (*procTree, error) {
	t := &procTree{proc: cmd.Process}
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return t, fmt.Errorf("CreateJobObject: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation, uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return t, fmt.Errorf("SetInformationJobObject: %w", err)
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(cmd.Process.Pid))
	if err != nil {
		windows.CloseHandle(job)
		return t, fmt.Errorf("OpenProcess: %w", err)
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(job, h); err != nil {
		windows.CloseHandle(job)
		return t, fmt.Errorf("AssignProcessToJobObject: %w", err)
	}
	t.job = job
	return t, nil
}

// kill terminates every process in the job, or the program alone.
func (t *procTree) kill() error {
	if t.job != 0 {
		return windows.TerminateJobObject(t.job, 1)
	}
	return t.proc.Kill()
}

func (t *procTree) close() {
	if t.job != 0 {
		windows.CloseHandle(t.job)
		t.job = 0
	}
}
