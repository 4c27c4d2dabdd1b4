package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/netns"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
)

// Down stops the sandbox in dir and removes everything its state lists.
func Down(dir string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		return ErrNoSandbox
	}
	unlock, err := lockDir(abs)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := LoadState(abs)
	if errors.Is(err, os.ErrNotExist) {
		_ = os.Remove(filepath.Join(abs, lockFile))
		_ = os.Remove(abs) // only if nothing else lives there
		return ErrNoSandbox
	}
	if err != nil {
		return err
	}
	return down(abs, st, logf)
}

// down undoes Up in reverse order. It carries on past errors so one stuck
// part does not leave the rest behind, and reports them all.
func down(dir string, st *State, logf func(string, ...any)) error {
	var errs []error
	for _, h := range st.Hosts {
		if err := stopHost(st, h); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
			continue
		}
		logf("%s down", h.Name)
	}
	if k := st.Kerberos; k != nil && k.KDCPID > 0 {
		stopProcess(k.KDCPID, 5*time.Second, func() bool { return isKDC(k.KDCPID, k.Dir) })
		logf("KDC of %s down", k.Realm)
	}
	if st.Bridge != "" {
		if err := netns.DeleteBridge(st.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range st.Files {
		b, err := os.ReadFile(f.Path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		sum := sha256.Sum256(b)
		if err == nil && hex.EncodeToString(sum[:]) != f.SHA256 {
			logf("leaving %s: it changed since the sandbox wrote it", f.Path)
			continue
		}
		if err := os.Remove(f.Path); err != nil {
			errs = append(errs, err)
		}
	}
	if st.CreatedRunSSHD {
		_ = os.Remove("/run/sshd") // only if still empty
	}
	if len(errs) > 0 {
		// Keep the state so a second Down can finish the job.
		return errors.Join(errs...)
	}
	// The lock file goes last: whoever waits for it starts afresh.
	for _, name := range []string{"hosts", "launcher", "ssh", "ca.pem", "kdc", ClientKeytabFile, StateFile, lockFile} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.Remove(dir) // only if nothing else lives there
	return errors.Join(errs...)
}

func stopHost(st *State, h HostState) error {
	if h.ServePID > 0 && h.Dir != "" {
		// Its shutdown stops sshd, the shells and the wineserver. The PID
		// is only trusted while it still runs this host's serve.
		stopProcess(h.ServePID, 10*time.Second, func() bool { return isServe(h.ServePID, h.Dir) })
		// A serve that died without its shutdown (kill -9) left its
		// children running in its session.
		sweepSession(h.ServePID, h.Dir)
	}
	if h.Prefix != "" {
		if _, err := os.Stat(h.Prefix); err == nil {
			_ = winecmd.StopWineserver(h.Prefix)
		}
	}
	if h.Namespace != "" && netns.Exists(h.Namespace) {
		// Whatever still runs in the namespace belongs to the host.
		for attempt := 0; attempt < 50; attempt++ {
			pids, err := netns.Pids(h.Namespace)
			if err != nil || len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				killNow(pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if h.Namespace != "" {
		if err := netns.Delete(h.Namespace, h.Veth); err != nil {
			return err
		}
	}
	if h.Dir != "" {
		if err := os.RemoveAll(h.Dir); err != nil {
			return err
		}
	}
	return nil
}

// HostStatus is one line of Status.
type HostStatus struct {
	HostState
	Running bool
	WinRM   bool // the HTTPS port accepts connections
	SSH     bool
}

// Status reports each host of the sandbox in dir.
func Status(dir string) (*State, []HostStatus, error) {
	st, err := LoadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, ErrNoSandbox
	}
	if err != nil {
		return nil, nil, err
	}
	var out []HostStatus
	for _, h := range st.Hosts {
		hs := HostStatus{HostState: h, Running: alive(h.ServePID)}
		if hs.Running {
			hs.WinRM = reachable(h.Address, h.HTTPPort)
			if h.HTTPSPort > 0 {
				hs.WinRM = hs.WinRM && reachable(h.Address, h.HTTPSPort)
			}
			if h.SSHPort > 0 {
				hs.SSH = reachable(h.Address, h.SSHPort)
			}
		}
		out = append(out, hs)
	}
	return st, out, nil
}

func reachable(addr string, port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Leftovers lists what of a sandbox with the given id still exists on the
// machine: processes whose command line or environment mentions its
// directory, namespaces and their mounts, links. Tests use it to prove
// Down complete.
func Leftovers(dir, id string) []string {
	var out []string
	abs, _ := filepath.Abs(dir)
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid := e.Name()
		if _, err := strconv.Atoi(pid); err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join("/proc", pid, "environ"))
		if strings.Contains(string(cmdline), abs+"/") || strings.Contains(string(environ), "WINEPREFIX="+abs+"/") {
			out = append(out, "process "+pid+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	if id != "" {
		mounts, _ := os.ReadFile("/proc/self/mounts")
		for _, l := range strings.Split(string(mounts), "\n") {
			if strings.Contains(l, "/run/netns/gsd-"+id+"-") {
				out = append(out, "mount "+l)
			}
		}
		nss, _ := os.ReadDir("/run/netns")
		for _, n := range nss {
			if strings.HasPrefix(n.Name(), "gsd-"+id+"-") {
				out = append(out, "namespace "+n.Name())
			}
		}
		links, _ := os.ReadDir("/sys/class/net")
		for _, l := range links {
			if l.Name() == "gsdbr"+id || strings.HasPrefix(l.Name(), "gs"+id+"h") {
				out = append(out, "link "+l.Name())
			}
		}
	}
	if entries, err := os.ReadDir(filepath.Join(abs, "hosts")); err == nil && len(entries) > 0 {
		out = append(out, "prefixes in "+filepath.Join(abs, "hosts"))
	}
	return out
}
