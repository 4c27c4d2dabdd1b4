//go:build !unix

package kdc

import "syscall"

// ownProcessGroup: MIT's KDC runs on Unix only.
func ownProcessGroup(bool) *syscall.SysProcAttr { return nil }
