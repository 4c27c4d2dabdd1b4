//go:build !windows

package wine

// Detected is false: Wine only runs Windows binaries.
func Detected() bool { return false }
