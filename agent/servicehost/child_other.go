//go:build !windows

package servicehost

import (
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
