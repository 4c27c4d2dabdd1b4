//go:build !windows

package servicehost

import (
	"errors"
	"os/exec"
	"syscall"
)

func prepareChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// interruptChild is the POSIX counterpart of Ctrl-Break.
func interruptChild(cmd *exec.Cmd) error {
	return cmd.Process.Signal(syscall.SIGINT)
}

func lookupEnvKey(m map[string]string, name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// procTree is the program and the processes it starts: on POSIX its process
// group (prepareChild sets Setpgid, so the group id is the program's pid).
type procTree struct{ pgid int }

func startTree(cmd *exec.Cmd) (*procTree, error) {
	return &procTree{pgid: cmd.Process.Pid}, nil
}

// kill sends SIGKILL to the whole group; an empty group is not an error.
func (t *procTree) kill() error {
	if err := syscall.Kill(-t.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

func (t *procTree) close() {}
