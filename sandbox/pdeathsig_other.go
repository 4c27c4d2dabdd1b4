//go:build !linux

package sandbox

import "syscall"

// childAttr: only Linux has a parent-death signal; Down sweeps serve's
// session instead.
func childAttr() *syscall.SysProcAttr { return nil }
