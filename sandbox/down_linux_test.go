//go:build linux

package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gsd-deploy/gsd/sandbox"
)

// TestDownSparesReusedPID: a state whose serve PID now belongs to an
// unrelated process (the PID was reused) must not get that process
// killed.
func TestDownSparesReusedPID(t *testing.T) {
	bystander := exec.Command("sleep", "1000")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })
	dir := t.TempDir()
	st := sandbox.State{Version: 1, ID: "ffff", Network: sandbox.NetLoopback, Hosts: []sandbox.HostState{{
		Name: "sandbox1", Address: "127.0.213.10", Dir: filepath.Join(dir, "hosts", "sandbox1"),
		Prefix: filepath.Join(dir, "hosts", "sandbox1", "prefix"), ServePID: bystander.Process.Pid,
	}}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sandbox.StateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Down(dir, nil); err != nil {
		t.Fatal(err)
	}
	pid := bystander.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("down killed an unrelated process with the state's PID: %v", err)
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z")) {
		t.Fatalf("down killed an unrelated process with the state's PID: %s", stat)
	}
}

// TestDownAfterServeKilled: a serve process killed outright (no
// shutdown) in loopback mode must not leave its sshd behind after down.
func TestDownAfterServeKilled(t *testing.T) {
	requireSandbox(t, true)
	work := t.TempDir()
	dir := filepath.Join(work, "sb")
	st, err := sandbox.Up(sandbox.Options{Dir: dir, Hosts: 1, Loopback: true, SSH: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sandbox.Down(dir, nil) })
	h := st.Hosts[0]
	if err := syscall.Kill(h.ServePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Down(dir, nil); err != nil {
		t.Fatal(err)
	}
	if left := sandbox.Leftovers(dir, st.ID); len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
}
