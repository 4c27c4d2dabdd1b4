package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/kdc"
	"github.com/gsd-deploy/gsd/sandbox/netns"
	"github.com/gsd-deploy/gsd/sandbox/pki"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// Options for Up.
type Options struct {
	// Dir holds the state, prefixes, keys and logs (DefaultDir when empty).
	Dir string
	// Hosts is how many hosts to start (1 when 0).
	Hosts int
	// SSH also runs sshd on each host.
	SSH bool
	// Loopback forces 127.x addresses even as root.
	Loopback bool
	// HCLDir is where sandbox.hcl and sandbox.auto.gsdvars are written;
	// nothing is written when empty.
	HCLDir string
	// Exe is the program that implements `sandbox serve|exec` (the gsd
	// binary; tests pass their own binary). os.Executable when empty.
	Exe string
	// MaxEnvelopeSize for the hosts' WinRM servers (Windows' default when
	// 0).
	MaxEnvelopeSize int
	// Hosts are stock Windows Servers after Enable-PSRemoting: one HTTP
	// listener on 5985, Negotiate (NTLM) with message encryption, Basic
	// off, unencrypted messages refused. These turn on what admins do:
	// an HTTPS listener on 5986 with a certificate from the sandbox's CA,
	// Basic, AllowUnencrypted, and CbtHardeningLevel = Strict.
	HTTPS                bool
	Basic                bool
	AllowUnencrypted     bool
	StrictChannelBinding bool
	// Kerberos makes the hosts members of a domain: a realm on Debian's
	// MIT KDC (RealmName) with the user's principal and an HTTP/ service
	// principal and keytab per host, which the hosts' WinRM servers
	// accept, and sandbox.hcl says auth = "kerberos".
	Kerberos bool
	// RefuseNTLM is the domain policy that denies incoming NTLM: the
	// hosts answer an NTLM token with a plain 401.
	RefuseNTLM bool
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// DefaultDir is the sandbox directory, relative to the project.
const DefaultDir = ".gsd-sandbox"

// SandboxUser is the Windows account of every host.
const SandboxUser = "gsd"

// The realm -kerberos starts, and the DNS domain of its hosts: host N is
// sandboxN.sandbox.gsd.test, with the service principal
// HTTP/sandboxN.sandbox.gsd.test. Hosts are reached by address, so no
// name has to resolve: the SPN is given to clients explicitly.
const (
	RealmName = "SANDBOX.GSD.TEST"
	Domain    = "sandbox.gsd.test"
)

// Address plan: each sandbox gets a 10.213.k.0/24 used only on this
// machine's own bridge and veths; the bridge is .1, hosts start at .10.
const (
	subnetBase  = "10.213"
	firstHostIP = 10
)

func (o *Options) defaults() error {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = abs
	if o.Hosts <= 0 {
		o.Hosts = 1
	}
	if o.Hosts > 50 {
		return fmt.Errorf("at most 50 hosts per sandbox")
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Exe = exe
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Up starts a sandbox. On failure it removes what it made, like Down.
func Up(o Options) (st *State, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	unlockDir, err := lockDir(o.Dir)
	if err != nil {
		return nil, err
	}
	defer unlockDir()
	defer func() {
		// A refusal before any state was written leaves the directory as
		// it found it: the lock file and the directory go if they are all
		// there is.
		if _, serr := os.Stat(filepath.Join(o.Dir, StateFile)); err != nil && errors.Is(serr, os.ErrNotExist) {
			_ = os.Remove(filepath.Join(o.Dir, lockFile))
			_ = os.Remove(o.Dir)
		}
	}()
	if _, err := LoadState(o.Dir); err == nil {
		return nil, fmt.Errorf("a sandbox is already up in %s; run 'gsd sandbox down' first", o.Dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		// An unreadable state may still name running hosts; starting over
		// it would lose them.
		return nil, fmt.Errorf("a sandbox seems to be present in %s (its state: %v); run 'gsd sandbox down' first", o.Dir, err)
	}
	if err := winecmd.CheckTemplate(); err != nil {
		return nil, err
	}
	if o.Kerberos {
		if err := kdc.Available(); err != nil {
			return nil, fmt.Errorf("-kerberos: %w", err)
		}
	}
	if o.SSH {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			return nil, fmt.Errorf("-ssh needs Debian's OpenSSH server (apt: openssh-server): %w", err)
		}
		if _, err := exec.LookPath("ssh-keygen"); err != nil {
			return nil, fmt.Errorf("-ssh needs ssh-keygen: %w", err)
		}
	}
	if o.HCLDir != "" {
		abs, err := filepath.Abs(o.HCLDir)
		if err != nil {
			return nil, err
		}
		o.HCLDir = abs
		for _, name := range []string{HCLFile, VarsFile} {
			if _, err := os.Stat(filepath.Join(o.HCLDir, name)); err == nil {
				return nil, fmt.Errorf("%s already exists and the sandbox would overwrite it; remove it first", filepath.Join(o.HCLDir, name))
			}
		}
	}
	st = &State{Version: 1, ID: randomHex(2), User: SandboxUser, Password: "Gsd-" + randomHex(12), SSH: o.SSH}
	st.Network = NetLoopback
	if !o.Loopback && netns.Supported() == nil {
		st.Network = NetNamespaces
	}
	if err := st.create(o.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := down(o.Dir, st, o.Logf); derr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, derr)
			}
			st = nil
		}
	}()

	ca, err := pki.NewCA("gsd sandbox " + st.ID)
	if err != nil {
		return st, err
	}
	st.CACert = filepath.Join(o.Dir, "ca.pem")
	if err := os.WriteFile(st.CACert, ca.CertPEM, 0o644); err != nil {
		return st, err
	}
	launcher, err := winecmd.BuildLauncher(filepath.Join(o.Dir, "launcher"))
	if err != nil {
		return st, err
	}
	if o.SSH {
		if err := setupSSHClient(o.Dir, st); err != nil {
			return st, err
		}
	}

	unlock, err := lockAddresses()
	if err != nil {
		return st, err
	}
	defer unlock()
	// Plan every host before creating anything, so the state names all
	// of them from the start.
	var gateway string
	if st.Network == NetNamespaces {
		k, err := netns.FreeSubnet(subnetBase)
		if err != nil {
			return st, err
		}
		gateway = fmt.Sprintf("%s.%d.1", subnetBase, k)
		st.Bridge = "gsdbr" + st.ID
		for i := 0; i < o.Hosts; i++ {
			st.Hosts = append(st.Hosts, HostState{
				Name:      fmt.Sprintf("sandbox%d", i+1),
				Address:   fmt.Sprintf("%s.%d.%d", subnetBase, k, firstHostIP+i),
				Namespace: fmt.Sprintf("gsd-%s-%d", st.ID, i+1),
				Veth:      fmt.Sprintf("gs%sh%d", st.ID, i+1),
			})
		}
	} else {
		ports := []int{5985}
		if o.HTTPS {
			ports = append(ports, 5986)
		}
		if o.SSH {
			ports = append(ports, 2222)
		}
		addrs, err := freeLoopbackAddresses(o.Hosts, ports)
		if err != nil {
			return st, err
		}
		for i, a := range addrs {
			st.Hosts = append(st.Hosts, HostState{Name: fmt.Sprintf("sandbox%d", i+1), Address: a})
		}
	}
	for i := range st.Hosts {
		h := &st.Hosts[i]
		h.HTTPPort = 5985
		if o.HTTPS {
			h.HTTPSPort = 5986
		}
		h.Dir = filepath.Join(o.Dir, "hosts", h.Name)
		h.Prefix = filepath.Join(h.Dir, "prefix")
		if o.SSH {
			h.SSHPort = 22
			if st.Network == NetLoopback {
				h.SSHPort = 2222
			}
		}
	}
	if err := st.save(o.Dir); err != nil {
		return st, err
	}
	if st.Network == NetNamespaces {
		if err := netns.CreateBridge(st.Bridge, gateway+"/24"); err != nil {
			return st, err
		}
	}
	if o.Kerberos {
		if err := startRealm(o, st); err != nil {
			return st, err
		}
	}

	// Hosts come up in parallel: copying prefixes is disk-bound and the
	// serve processes start on their own.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 4)
	for i := range st.Hosts {
		wg.Add(1)
		go func(h *HostState) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// Host fields change under the lock, and the state is saved at
			// once, so Down finds a host's process even if Up dies next.
			record := func(update func()) {
				mu.Lock()
				defer mu.Unlock()
				update()
				_ = st.save(o.Dir)
			}
			if err := startHost(o, st, ca, launcher, h, gateway, record); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
				mu.Unlock()
			}
		}(&st.Hosts[i])
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	if o.HCLDir != "" {
		if err := writeHCL(o.HCLDir, o.Dir, st); err != nil {
			return st, err
		}
	}
	return st, st.save(o.Dir)
}

func startHost(o Options, st *State, ca *pki.CA, launcher string, h *HostState, gateway string, record func(func())) error {
	start := time.Now()
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return err
	}
	if err := winecmd.ClonePrefix(h.Prefix); err != nil {
		return err
	}
	if st.Network == NetNamespaces {
		if err := netns.AddHost(h.Namespace, h.Veth, st.Bridge, h.Address+"/24", gateway); err != nil {
			return err
		}
	}
	certPEM, keyPEM, err := ca.Issue(h.Name, []string{h.Address, h.Name, h.Name + "." + Domain})
	if err != nil {
		return err
	}
	cfg := hostConfig{
		Name: h.Name, Address: h.Address, HTTPPort: h.HTTPPort, HTTPSPort: h.HTTPSPort,
		User: st.User, Password: st.Password, MaxEnvelopeSize: o.MaxEnvelopeSize,
		CertFile: filepath.Join(h.Dir, "cert.pem"), KeyFile: filepath.Join(h.Dir, "key.pem"),
		Prefix: h.Prefix, Launcher: launcher,
		Basic: o.Basic, AllowUnencrypted: o.AllowUnencrypted, StrictChannelBinding: o.StrictChannelBinding,
		RefuseNTLM: o.RefuseNTLM,
	}
	if h.SPN != "" {
		cfg.Keytab = hostKeytab(h)
	}
	if err := os.WriteFile(cfg.CertFile, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cfg.KeyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if o.SSH {
		conf, hostKey, err := setupSSHD(o, st, h)
		if err != nil {
			return err
		}
		cfg.SSHDConfig, cfg.SSHPort = conf, h.SSHPort
		record(func() { h.SSHHostKey = hostKey })
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.Dir, hostConfigFile), b, 0o600); err != nil {
		return err
	}

	var cmd *exec.Cmd
	if st.Network == NetNamespaces {
		cmd = netns.Command(h.Namespace, o.Exe, "sandbox", "serve", h.Dir)
	} else {
		cmd = exec.Command(o.Exe, "sandbox", "serve", h.Dir)
	}
	out, err := os.OpenFile(filepath.Join(h.Dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own session: the host outlives `gsd sandbox up` and a Ctrl-C in
	// the terminal that ran it.
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return err
	}
	record(func() { h.ServePID = cmd.Process.Pid })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := filepath.Join(h.Dir, readyFile)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(h.Dir, logFile))
			return fmt.Errorf("the host's server exited (%v): %s", err, tail(log, 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("the host's server did not get ready; see %s", filepath.Join(h.Dir, logFile))
		}
	}
	o.Logf("%s up at %s in %s", h.Name, h.Address, time.Since(start).Round(10*time.Millisecond))
	return nil
}

// startRealm starts the sandbox's KDC and makes its principals: the
// user's, with the sandbox's password, and one HTTP/ service principal
// per host, whose keytab the host's server reads. The client keytab is
// the user's keys for a login without kinit, as CI has.
func startRealm(o Options, st *State) error {
	r, err := kdc.Start(kdc.Options{Realm: RealmName, Dir: filepath.Join(o.Dir, "kdc")})
	if err != nil {
		return err
	}
	st.Kerberos = &RealmState{Realm: r.Name, Dir: r.Dir, Config: r.Config, KDC: r.Addr, KDCPID: r.PID, Principal: st.User + "@" + r.Name}
	// Saved at once, so Down stops the KDC whatever fails next.
	if err := st.save(o.Dir); err != nil {
		return err
	}
	if err := r.AddUser(st.User, st.Password); err != nil {
		return err
	}
	// One at a time: kadmin.local writes one database.
	for i := range st.Hosts {
		h := &st.Hosts[i]
		h.SPN = "HTTP/" + h.Name + "." + Domain
		if err := os.MkdirAll(h.Dir, 0o700); err != nil {
			return err
		}
		if err := r.AddService(h.SPN, hostKeytab(h)); err != nil {
			return err
		}
	}
	keytab := filepath.Join(o.Dir, ClientKeytabFile)
	if err := r.ExportUserKeytab(st.User, keytab); err != nil {
		return err
	}
	st.Kerberos.ClientKeytab = keytab
	o.Logf("realm %s: KDC at %s, principal %s, %d service principals", r.Name, r.Addr, st.Kerberos.Principal, len(st.Hosts))
	return st.save(o.Dir)
}

// ClientKeytabFile, in the sandbox directory, holds the user's keys.
const ClientKeytabFile = "gsd.keytab"

func hostKeytab(h *HostState) string { return filepath.Join(h.Dir, "http.keytab") }

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freeLoopbackAddresses picks 127.0.k.x addresses on which all the
// ports are free, one address per host.
func freeLoopbackAddresses(n int, ports []int) ([]string, error) {
	var out []string
	free := func(a string) bool {
		for _, p := range ports {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p)))
			if err != nil {
				return false
			}
			l.Close()
		}
		return true
	}
	for k := 213; k < 255 && len(out) < n; k++ {
		for x := firstHostIP; x < 250 && len(out) < n; x++ {
			if a := fmt.Sprintf("127.0.%d.%d", k, x); free(a) {
				out = append(out, a)
			}
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d free loopback addresses", len(out))
	}
	return out, nil
}

// ServeLog returns the host's server log.
func (h HostState) ServeLog() string { return filepath.Join(h.Dir, logFile) }

// WinRMMaxEnvelopeSize is what the hosts enforce when Options left it 0.
const WinRMMaxEnvelopeSize = winrs.DefaultMaxEnvelopeSize
