package sandbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/masterzen/winrm"
	"golang.org/x/crypto/ssh"

	"github.com/gsd-deploy/gsd/agent/bootstrap"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/sandbox"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

func TestRenderHCL(t *testing.T) {
	st := &sandbox.State{
		User: "gsd", SSHUser: "root", Password: `p"w\$`, CACert: "/proj/.gsd-sandbox/ca.pem", SSHKey: "/proj/.gsd-sandbox/ssh/id_ed25519",
		Hosts: []sandbox.HostState{
			{Name: "sandbox1", Address: "10.213.1.10", HTTPPort: 5985, HTTPSPort: 5986, SSHPort: 22, SSHHostKey: "ssh-ed25519 AAAA"},
			{Name: "sandbox2", Address: "10.213.1.11", HTTPPort: 5985},
		},
	}
	hcl := sandbox.RenderHCL("/proj", st)
	if _, diags := hclsyntax.ParseConfig(hcl, sandbox.HCLFile, hclStart); diags.HasErrors() {
		t.Fatalf("sandbox.hcl does not parse: %v\n%s", diags, hcl)
	}
	for _, want := range []string{`variable "sandbox_password"`, "sensitive = true", `host "sandbox1"`, `host "sandbox2"`,
		"password = var.sandbox_password", `ca_cert  = ".gsd-sandbox/ca.pem"`, `https    = true`, `private_key = ".gsd-sandbox/ssh/id_ed25519"`,
		`host_key    = "ssh-ed25519 AAAA"`, `transport = "winrm"`} {
		if !bytes.Contains(hcl, []byte(want)) {
			t.Errorf("sandbox.hcl lacks %s:\n%s", want, hcl)
		}
	}
	// A host with only the stock listener gets the default way in: no
	// https, port, auth or CA to write.
	_, second, _ := bytes.Cut(hcl, []byte(`host "sandbox2"`))
	for _, not := range []string{"https", "port", "auth", "ca_cert"} {
		if bytes.Contains(second, []byte(not)) {
			t.Errorf("sandbox2 has %s:\n%s", not, second)
		}
	}
	if bytes.Contains(hcl, []byte(st.Password)) {
		t.Error("the password is in sandbox.hcl")
	}
	if bytes.Count(hcl, []byte("ssh {")) != 1 {
		t.Errorf("want one ssh block:\n%s", hcl)
	}
	vars := sandbox.RenderVars(st)
	f, diags := hclsyntax.ParseConfig(vars, sandbox.VarsFile, hclStart)
	if diags.HasErrors() {
		t.Fatalf("vars do not parse: %v", diags)
	}
	attrs, _ := f.Body.JustAttributes()
	v, _ := attrs[sandbox.PasswordVariable].Expr.Value(nil)
	if v.AsString() != st.Password {
		t.Errorf("password round trip: %q", v.AsString())
	}
}

// requireSandbox checks what a running sandbox needs.
func requireSandbox(t testing.TB, withSSH bool) {
	t.Helper()
	sandboxtest.RequireWine(t)
	if withSSH {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			sandboxtest.Missing(t, "Debian's openssh-server")
		}
	}
}

func up(t testing.TB, n int, withSSH bool) (*sandbox.State, string) {
	t.Helper()
	// An HTTPS listener too, for winrmClient: masterzen/winrm's message
	// encryption cannot send while it receives (see winrs' conformance
	// tests), which streaming stdin needs.
	st := upSandbox(t, sandbox.Options{Hosts: n, SSH: withSSH, HTTPS: true})
	return st, filepath.Dir(st.CACert)
}

// winrmClient reaches h with masterzen/winrm: over its HTTPS listener
// when it has one, else the stock way in, HTTP with every message
// encrypted.
func winrmClient(t testing.TB, st *sandbox.State, h sandbox.HostState) *winrm.Client {
	t.Helper()
	params := winrm.NewParameters("PT60S", "en-US", 153600)
	var ep *winrm.Endpoint
	if h.HTTPSPort > 0 {
		ca, err := os.ReadFile(st.CACert)
		if err != nil {
			t.Fatal(err)
		}
		ep = winrm.NewEndpoint(h.Address, h.HTTPSPort, true, false, ca, nil, nil, 2*time.Minute)
		params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	} else {
		ep = winrm.NewEndpoint(h.Address, h.HTTPPort, false, false, nil, nil, nil, 2*time.Minute)
		params.TransportDecorator = func() winrm.Transporter {
			enc, err := winrm.NewEncryption("ntlm")
			if err != nil {
				t.Fatal(err)
			}
			return enc
		}
	}
	c, err := winrm.NewClientWithParameters(ep, st.User, st.Password, params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sshClient(t testing.TB, st *sandbox.State, h sandbox.HostState) *ssh.Client {
	t.Helper()
	keyPEM, err := os.ReadFile(st.SSHKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.SSHHostKey))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(h.Address, strconv.Itoa(h.SSHPort)), &ssh.ClientConfig{
		User:            st.SSHUser,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUpDownLeavesNothing runs the real CLI: gsd sandbox up -n 3, then
// gsd sandbox down, and looks for any process, namespace, mount, link,
// prefix or file left behind.
func TestUpDownLeavesNothing(t *testing.T) {
	requireSandbox(t, true)
	work := t.TempDir()
	gsd := filepath.Join(work, "gsd")
	build := exec.Command("go", "build", "-o", gsd, "github.com/gsd-deploy/gsd/cmd/gsd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building gsd: %v\n%s", err, out)
	}
	project := filepath.Join(work, "project")
	if err := os.Mkdir(project, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gsd, args...)
		cmd.Dir = project
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gsd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("sandbox", "up", "-n", "3", "-ssh")
	st, err := sandbox.LoadState(filepath.Join(project, sandbox.DefaultDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Hosts) != 3 {
		t.Fatalf("%d hosts", len(st.Hosts))
	}
	if status := run("sandbox", "status"); strings.Count(status, "running") != 3 {
		t.Errorf("status: %q", status)
	}
	// What up wrote is a configuration gsd accepts as it is.
	run("validate")
	// Every host answers, and runs commands, before it is taken down.
	for _, h := range st.Hosts {
		c := winrmClient(t, st, h)
		var out bytes.Buffer
		code, err := c.RunWithContext(context.Background(), "echo %COMPUTERNAME%& exit 4", &out, io.Discard)
		if err != nil || code != 4 {
			t.Errorf("%s: exit %d, %v", h.Name, code, err)
		}
	}
	if len(sandbox.Leftovers(filepath.Join(project, sandbox.DefaultDir), st.ID)) == 0 {
		t.Fatal("Leftovers sees nothing of a running sandbox; it cannot prove anything")
	}
	run("sandbox", "down")
	if left := sandbox.Leftovers(filepath.Join(project, sandbox.DefaultDir), st.ID); len(left) > 0 {
		t.Errorf("left behind after down:\n%s", strings.Join(left, "\n"))
	}
	entries, _ := os.ReadDir(project)
	for _, e := range entries {
		t.Errorf("left in the project directory: %s", e.Name())
	}
}

// TestAgentThroughBootstrap uploads gsd-agent.exe with the PowerShell
// bootstrap over WinRM, then drives it as the transport will: it stages an
// artifact and creates a service in the host's Wine service manager.
func TestAgentThroughBootstrap(t *testing.T) {
	requireSandbox(t, false)
	agentExe := filepath.Join(t.TempDir(), "gsd-agent.exe")
	build := exec.Command("go", "build", "-o", agentExe, "github.com/gsd-deploy/gsd/cmd/gsd-agent")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building gsd-agent.exe: %v\n%s", err, out)
	}
	agentBytes, err := os.ReadFile(agentExe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(agentBytes)
	sha := hex.EncodeToString(sum[:])

	st, _ := up(t, 1, false)
	h := st.Hosts[0]
	c := winrmClient(t, st, h)
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer shell.Close()

	dest := `C:\ProgramData\gsd\bin\` + sha + `\gsd-agent.exe`
	line, err := bootstrap.CommandLine(bootstrap.Params{Root: `C:\ProgramData\gsd`, Path: dest, SHA256: sha})
	if err != nil {
		t.Fatal(err)
	}
	// A wrong hash first: refused, and nothing is left at the destination.
	bad, _ := bootstrap.CommandLine(bootstrap.Params{Root: `C:\ProgramData\gsd`, Path: dest, SHA256: strings.Repeat("0", 64)})
	if r := execute(t, shell, agentBytes[:1000], bad); r.code != bootstrap.ExitHashMismatch || !strings.Contains(r.stderr, "mismatch") {
		t.Fatalf("wrong hash: %+v", r)
	}
	r := execute(t, shell, agentBytes, line)
	if r.code != 0 || strings.TrimSpace(r.stdout) != bootstrap.OKPrefix+sha {
		t.Fatalf("bootstrap: %+v", r)
	}

	// The agent, started from where the bootstrap put it.
	cmd, err := shell.ExecuteWithContext(context.Background(), dest, "serve")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(os.Stderr, cmd.Stderr) }()
	ac, err := agentClient(cmd.Stdout, cmd.Stdin)
	if err != nil {
		t.Fatal(err)
	}
	if ac.hello().OS != "windows" {
		t.Fatalf("hello: %+v", ac.hello())
	}
	name := "gsdsbx" + st.ID
	if err := ac.createService(name, agentBytes); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ac.deleteService(name) }()
	found, err := ac.serviceInFacts(name)
	if err != nil || !found {
		t.Fatalf("service %s not in facts: %v", name, err)
	}
	// Independently of the agent: Wine's own sc.exe sees it.
	q := execute(t, shell, nil, "sc query "+name)
	if !strings.Contains(strings.ToUpper(q.stdout), strings.ToUpper(name)) {
		t.Errorf("sc query %s: exit %d, stdout %q, stderr %q", name, q.code, q.stdout, q.stderr)
	}
	if err := ac.deleteService(name); err != nil {
		t.Error(err)
	}
	_ = cmd.Stdin.Close()
	cmd.Wait()
}

type result struct {
	stdout, stderr string
	code           int
}

func execute(t *testing.T, sh *winrm.Shell, stdin []byte, command string) result {
	t.Helper()
	cmd, err := sh.ExecuteWithContext(context.Background(), command)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(&out, cmd.Stdout); done <- struct{}{} }()
	go func() { _, _ = io.Copy(&errb, cmd.Stderr); done <- struct{}{} }()
	if stdin != nil {
		if _, err := cmd.Stdin.Write(stdin); err != nil {
			t.Fatal(err)
		}
	}
	_ = cmd.Stdin.Close()
	cmd.Wait()
	<-done
	<-done
	cmd.Close()
	return result{out.String(), errb.String(), cmd.ExitCode()}
}

func TestSSHHost(t *testing.T) {
	sandboxtest.RequireRoot(t)
	st, _ := up(t, 1, true)
	h := st.Hosts[0]
	c := sshClient(t, st, h)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Stdin = strings.NewReader("from stdin\r\n")
	var out bytes.Buffer
	s.Stdout = &out
	err = s.Run("more & exit 6")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 6 {
		t.Fatalf("exit: %v", err)
	}
	if strings.TrimSpace(out.String()) != "from stdin" {
		t.Errorf("stdout %q", out.String())
	}
	// The same refusal as over WinRM for PowerShell that is not the
	// bootstrap.
	s2, _ := c.NewSession()
	b, err := s2.CombinedOutput("powershell -Command Get-Service")
	if err == nil || !strings.Contains(string(b), "does not run PowerShell") {
		t.Errorf("powershell over ssh: %v %q", err, b)
	}
}

func BenchmarkSandboxStart(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			requireSandbox(b, false)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				start := time.Now()
				if _, err := sandbox.Up(sandbox.Options{Dir: filepath.Join(dir, "sb"), Hosts: n}); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				if err := sandbox.Down(filepath.Join(dir, "sb"), nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/up")
		})
	}
}

// BenchmarkRoundTrip runs `cmd /c exit 0` on one host over WinRM (shell
// create, command, receive, delete on a kept-alive HTTPS connection) and
// over SSH (a new session on an open connection).
func BenchmarkRoundTrip(b *testing.B) {
	st, _ := up(b, 1, true)
	h := st.Hosts[0]
	b.Run("winrm", func(b *testing.B) {
		c := winrmClient(b, st, h)
		for i := 0; i < b.N; i++ {
			code, err := c.RunWithContext(context.Background(), "cmd /c exit 0", io.Discard, io.Discard)
			if err != nil || code != 0 {
				b.Fatalf("exit %d, %v", code, err)
			}
		}
	})
	b.Run("ssh", func(b *testing.B) {
		c := sshClient(b, st, h)
		defer c.Close()
		for i := 0; i < b.N; i++ {
			s, err := c.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Run("cmd /c exit 0"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var hclStart = hclPos()

// TestLoopbackHost is the mode used without root: the host on its own
// 127.x address instead of a namespace.
func TestLoopbackHost(t *testing.T) {
	st := upSandbox(t, sandbox.Options{Hosts: 1, Loopback: true})
	h := st.Hosts[0]
	if st.Network != sandbox.NetLoopback || !strings.HasPrefix(h.Address, "127.") {
		t.Fatalf("network %s, address %s", st.Network, h.Address)
	}
	var out bytes.Buffer
	code, err := winrmClient(t, st, h).RunWithContext(context.Background(), "echo loopback& exit 9", &out, io.Discard)
	if err != nil || code != 9 || strings.TrimSpace(out.String()) != "loopback" {
		t.Fatalf("exit %d, %q, %v", code, out.String(), err)
	}
	// The host's commands see its own C: drive, not the machine's files:
	// no Z: drive, and the profile folders are the prefix's own.
	out.Reset()
	code, err = winrmClient(t, st, h).RunWithContext(context.Background(), `dir /b Z:\`, &out, io.Discard)
	if err != nil || code == 0 {
		t.Errorf("Z: is mapped in a host: exit %d, %v: %q", code, err, out.String())
	}
	entries, _ := os.ReadDir(filepath.Join(h.Prefix, "drive_c", "users"))
	for _, u := range entries {
		folders, _ := os.ReadDir(filepath.Join(h.Prefix, "drive_c", "users", u.Name()))
		for _, f := range folders {
			if f.Type()&os.ModeSymlink != 0 {
				t.Errorf("users\\%s\\%s links out of the prefix", u.Name(), f.Name())
			}
		}
	}
}

// TestFailedUpCleansUp: a host whose server cannot start fails Up, and Up
// removes everything it had made, as Down would.
func TestFailedUpCleansUp(t *testing.T) {
	requireSandbox(t, false)
	work := t.TempDir()
	dir := filepath.Join(work, "sb")
	_, err := sandbox.Up(sandbox.Options{Dir: dir, Hosts: 2, HCLDir: work, Exe: "/bin/false"})
	if err == nil {
		t.Fatal("Up succeeded with a server that exits at once")
	}
	if left := sandbox.Leftovers(dir, ""); len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sandbox directory still there: %v", err)
	}
	entries, _ := os.ReadDir(work)
	for _, e := range entries {
		t.Errorf("left in the project directory: %s", e.Name())
	}
}

// What sandbox up writes must load as a configuration, with and without
// SSH, and gsd must use WinRM for a host that offers both.
func TestRenderedHCLLoads(t *testing.T) {
	dir := t.TempDir()
	st := &sandbox.State{User: "gsd", SSHUser: "root", Password: "pw", CACert: filepath.Join(dir, "ca.pem"), SSHKey: filepath.Join(dir, "id"),
		Hosts: []sandbox.HostState{
			{Name: "sandbox1", Address: "10.213.1.10", HTTPPort: 5985, HTTPSPort: 5986, SSHPort: 22, SSHHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGgzbdLUnT0Cc4j0UzgbNrAPlq6EbjpcxD8mAtQ5HFUa"},
			{Name: "sandbox2", Address: "10.213.1.11", HTTPPort: 5985},
		}}
	for name, data := range map[string][]byte{sandbox.HCLFile: sandbox.RenderHCL(dir, st), sandbox.VarsFile: sandbox.RenderVars(st)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Validate mode: the CA and key files do not exist here; everything
	// else must be right.
	cfg, diags := config.Load(config.Options{Paths: []string{dir}, AllowUnsetVariables: true})
	for _, d := range diags {
		if d.Summary != "Cannot read CA certificate" && d.Summary != "Cannot read private key" {
			t.Errorf("%s: %s", d.Summary, d.Detail)
		}
	}
	if h := cfg.Host("sandbox1"); h == nil || h.Transport() != "winrm" || h.SSH == nil || !h.WinRM.Password.Sensitive {
		t.Errorf("sandbox1: %+v", h)
	}
	if h := cfg.Host("sandbox2"); h == nil || h.Transport() != "winrm" || h.SSH != nil {
		t.Errorf("sandbox2: %+v", h)
	}
}

// TestConcurrentUpOneDir: two Ups in one directory at once. One gets the
// sandbox, the other a clear refusal, and Down afterwards leaves nothing.
func TestConcurrentUpOneDir(t *testing.T) {
	requireSandbox(t, false)
	work := t.TempDir()
	dir := filepath.Join(work, "sb")
	t.Cleanup(func() { _ = sandbox.Down(dir, nil) })
	type outcome struct {
		st  *sandbox.State
		err error
	}
	results := make(chan outcome, 2)
	for i := 0; i < 2; i++ {
		go func() {
			st, err := sandbox.Up(sandbox.Options{Dir: dir, Hosts: 1, Loopback: true, HCLDir: work})
			results <- outcome{st, err}
		}()
	}
	var won *sandbox.State
	var errs []error
	for i := 0; i < 2; i++ {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
		} else {
			won = r.st
		}
	}
	if won == nil || len(errs) != 1 {
		t.Fatalf("want one Up to succeed and one to fail, got errors %v", errs)
	}
	if !strings.Contains(errs[0].Error(), "already up") || !strings.Contains(errs[0].Error(), "down") {
		t.Errorf("the refusal does not say why: %v", errs[0])
	}
	st, err := sandbox.LoadState(dir)
	if err != nil || st.ID != won.ID {
		t.Fatalf("the state is not the winner's: %v", err)
	}
	var out bytes.Buffer
	if code, err := winrmClient(t, won, won.Hosts[0]).RunWithContext(context.Background(), "echo up& exit 2", &out, io.Discard); err != nil || code != 2 {
		t.Errorf("the winner's host: exit %d, %v", code, err)
	}
	if err := sandbox.Down(dir, nil); err != nil {
		t.Fatal(err)
	}
	if left := sandbox.Leftovers(dir, won.ID); len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
	entries, _ := os.ReadDir(work)
	for _, e := range entries {
		t.Errorf("left in the project directory: %s", e.Name())
	}
}

// TestCorruptStateRefused: a state Up cannot read may still name running
// hosts, so Up refuses to start over it.
func TestCorruptStateRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sandbox.StateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sandbox.Up(sandbox.Options{Dir: dir, Exe: "/bin/false"})
	if err == nil || !strings.Contains(err.Error(), "present") || !strings.Contains(err.Error(), "down") {
		t.Fatalf("Up over an unreadable state: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, sandbox.StateFile)); string(b) != "{not json" {
		t.Errorf("the state was overwritten: %q", b)
	}
}

// TestRefusedUpLeavesNoDirectory: an Up refused before it starts
// anything (here: sandbox.hcl is already there) leaves no sandbox
// directory or lock file behind.
func TestRefusedUpLeavesNoDirectory(t *testing.T) {
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, sandbox.HCLFile), []byte("# mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "sb")
	if _, err := sandbox.Up(sandbox.Options{Dir: dir, HCLDir: work, Exe: "/bin/false"}); err == nil {
		t.Fatal("Up overwrote sandbox.hcl")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Up left %s: %v", dir, err)
	}
}
