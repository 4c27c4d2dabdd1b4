package ssh_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
)

// execHelper is the argument that makes the test binary act as sshd's
// forced command: it runs the client's command as Windows OpenSSH does,
// through cmd.exe, in a Wine prefix.
const execHelper = "gsd-ssh-exec"

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == execHelper {
		os.Exit(forcedCommand(os.Args[2], os.Args[3]))
	}
	code := m.Run()
	agentbuild.Cleanup()
	os.Exit(code)
}

func forcedCommand(prefix, launcher string) int {
	line := os.Getenv("SSH_ORIGINAL_COMMAND")
	if line == "" {
		fmt.Fprintln(os.Stderr, "interactive sessions are not supported; run a command")
		return 1
	}
	h := &winecmd.Host{Prefix: prefix, Launcher: launcher}
	p, err := h.Start(winecmd.Command{Line: line, Shell: true, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		_, _ = io.Copy(p.Stdin(), os.Stdin)
		_ = p.Stdin().Close()
	}()
	return p.Wait()
}

// keyPair is an ed25519 key written in OpenSSH form.
type keyPair struct {
	file   string // private key
	signer ssh.Signer
	public ssh.PublicKey
}

func newKey(t *testing.T, dir, name string) keyPair {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{file: file, signer: signer, public: signer.PublicKey()}
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// sshdHost is Debian's sshd on a loopback port, its commands run under a
// Wine prefix of its own.
type sshdHost struct {
	addr    string
	hostKey keyPair
	client  keyPair
	wine    *winecmd.Host
	dir     string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSSHD(t *testing.T) *sshdHost {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		sandboxtest.Missing(t, "Debian's sshd (apt: openssh-server)")
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory; Debian makes it at
		// boot, containers often lack it.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wine := sandboxtest.WineHost(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &sshdHost{dir: dir, wine: wine}
	h.hostKey = newKey(t, dir, "ssh_host_ed25519_key")
	h.client = newKey(t, dir, "id_ed25519")
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, []byte(authorizedLine(h.client.public)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	h.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := filepath.Join(dir, "sshd_config")
	text := fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
AllowUsers %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PrintMotd no
LogLevel ERROR
ForceCommand '%s' %s '%s' '%s'
`, h.addr, h.hostKey.file, filepath.Join(dir, "sshd.pid"), auth, u.Username, exe, execHelper, wine.Prefix, wine.Launcher)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", conf)
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for {
		c, err := net.Dial("tcp", h.addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return h
}

// config is the host block for reaching h with the client key, trusting
// its host key through a known_hosts file.
func (h *sshdHost) config(t *testing.T) *config.Host {
	t.Helper()
	host, port, _ := net.SplitHostPort(h.addr)
	p, _ := strconv.Atoi(port)
	u, _ := user.Current()
	return &config.Host{Name: "web2", Address: host, SSH: &config.SSH{
		User:       u.Username,
		Port:       p,
		PrivateKey: h.client.file,
		KnownHosts: knownHosts(t, h.addr, h.hostKey.public),
		Timeout:    30 * time.Second,
	}}
}

func knownHosts(t *testing.T, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "known_hosts")
	var b strings.Builder
	for _, k := range keys {
		host, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&b, "[%s]:%s %s\n", host, port, authorizedLine(k))
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func bg() context.Context { return context.Background() }
