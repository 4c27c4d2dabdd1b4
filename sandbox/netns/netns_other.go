//go:build !linux

package netns

import (
	"errors"
	"os/exec"
)

var errNotLinux = errors.New("network namespaces exist only on Linux")

// Supported reports that namespaces are unavailable here.
func Supported() error { return errNotLinux }

// CreateBridge is unavailable outside Linux.
func CreateBridge(name, gateway string) error { return errNotLinux }

// DeleteBridge is unavailable outside Linux.
func DeleteBridge(name string) error { return nil }

// AddHost is unavailable outside Linux.
func AddHost(ns, hostVeth, bridge, address, gateway string) error { return errNotLinux }

// Exists is always false outside Linux.
func Exists(ns string) bool { return false }

// Pids is unavailable outside Linux.
func Pids(ns string) ([]int, error) { return nil, errNotLinux }

// Delete is a no-op outside Linux.
func Delete(ns, hostVeth string) error { return nil }

// Command cannot enter a namespace outside Linux; it runs the program as
// it is.
func Command(ns, name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// FreeSubnet is unavailable outside Linux.
func FreeSubnet(base string) (int, error) { return 0, errNotLinux }
