package kdc

import "syscall"

func setParentDeathSignal(a *syscall.SysProcAttr, on bool) {
	if on {
		a.Pdeathsig = syscall.SIGTERM
	}
}
