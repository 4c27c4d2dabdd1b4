//go:build linux

package netns

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Supported reports whether namespaces can be made here: root and iproute2.
func Supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("iproute2 is not installed: %w", err)
	}
	return nil
}

// CreateBridge makes the root-namespace side of a sandbox network, with
// gateway as its address (CIDR form, e.g. 10.213.7.1/24).
func CreateBridge(name, gateway string) error {
	if err := ip("link", "add", name, "type", "bridge"); err != nil {
		return err
	}
	if err := ip("addr", "add", gateway, "dev", name); err != nil {
		return err
	}
	return ip("link", "set", name, "up")
}

// DeleteBridge removes a bridge; a missing one is not an error.
func DeleteBridge(name string) error {
	if !linkExists(name) {
		return nil
	}
	return ip("link", "del", name)
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

// AddHost creates namespace ns with a veth pair: hostVeth stays in the
// root namespace on the bridge, its peer becomes eth0 in ns with address
// (CIDR form) and a default route via gateway.
func AddHost(ns, hostVeth, bridge, address, gateway string) error {
	peer := hostVeth + "p"
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", hostVeth, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns},
		{"link", "set", hostVeth, "master", bridge},
		{"link", "set", hostVeth, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", peer, "name", "eth0"},
		{"-n", ns, "addr", "add", address, "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", gateway},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// Exists reports whether the namespace is there.
func Exists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

// Pids lists the processes inside the namespace.
func Pids(ns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// Delete removes the namespace (and with it the veth pair and the
// /run/netns bind mount); a missing one is not an error.
func Delete(ns string, hostVeth string) error {
	if hostVeth != "" && linkExists(hostVeth) {
		_ = ip("link", "del", hostVeth)
	}
	if !Exists(ns) {
		return nil
	}
	return ip("netns", "del", ns)
}

// Command runs a program inside the namespace.
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// FreeSubnet returns a third octet k such that base.k.0/24 is used by no
// interface on this machine.
func FreeSubnet(base string) (int, error) {
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return 0, err
	}
	for k := 1; k < 255; k++ {
		if !bytes.Contains(out, []byte(fmt.Sprintf(" %s.%d.", base, k))) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("no free /24 left in %s.0.0/16", base)
}
