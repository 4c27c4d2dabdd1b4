package sandbox

import "syscall"

// childAttr is for processes serve starts (sshd): they get SIGTERM when
// serve dies, even by kill -9, instead of living on without it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
