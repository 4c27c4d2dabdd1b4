//go:build unix

package kdc

import "syscall"

// ownProcessGroup keeps a terminal's Ctrl-C meant for the caller from
// reaching the KDC before the caller's cleanup stops it.
func ownProcessGroup(stopWithParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(a, stopWithParent)
	return a
}
