package ssh_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/ssh"
	"github.com/gsd-deploy/gsd/providers/transport"
)

func runErr(t *testing.T, cfg *config.Host, opts ssh.Options) error {
	t.Helper()
	tr, err := ssh.New(cfg, opts)
	if err != nil {
		return err
	}
	defer tr.Close()
	_, err = transport.Run(bg(), tr, "exit 0", nil, 1024)
	return err
}

func wantError(t *testing.T, err error, kind error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestTrustAndAuth(t *testing.T) {
	h := startSSHD(t)
	fp := gossh.FingerprintSHA256(h.hostKey.public)

	t.Run("known host", func(t *testing.T) {
		if err := runErr(t, h.config(t), ssh.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown host key", func(t *testing.T) {
		cfg := h.config(t)
		cfg.SSH.KnownHosts = knownHosts(t, "127.0.0.1:1") // another host only
		err := runErr(t, cfg, ssh.Options{})
		wantError(t, err, transport.ErrTrust, "is not known", fp, "ssh-ed25519", cfg.SSH.KnownHosts, "host_key =", "[127.0.0.1]:")
	})
	t.Run("no known_hosts file", func(t *testing.T) {
		cfg := h.config(t)
		cfg.SSH.KnownHosts = filepath.Join(t.TempDir(), "absent")
		wantError(t, runErr(t, cfg, ssh.Options{}), transport.ErrTrust, "is not known", fp)
	})
	t.Run("changed host key", func(t *testing.T) {
		cfg := h.config(t)
		impostor := newKey(t, t.TempDir(), "old_host_key")
		cfg.SSH.KnownHosts = knownHosts(t, h.addr, impostor.public)
		err := runErr(t, cfg, ssh.Options{})
		wantError(t, err, transport.ErrTrust, "has CHANGED", fp, gossh.FingerprintSHA256(impostor.public), "ssh-keygen -R", cfg.SSH.KnownHosts+":1")
	})
	t.Run("pinned host key", func(t *testing.T) {
		cfg := h.config(t)
		cfg.SSH.KnownHosts = filepath.Join(t.TempDir(), "absent")
		cfg.SSH.HostKey = authorizedLine(h.hostKey.public)
		if err := runErr(t, cfg, ssh.Options{}); err != nil {
			t.Fatal(err)
		}
		cfg.SSH.HostKey = authorizedLine(newKey(t, t.TempDir(), "other").public)
		wantError(t, runErr(t, cfg, ssh.Options{}), transport.ErrTrust, "does not match host_key", fp)
	})
	t.Run("key refused", func(t *testing.T) {
		cfg := h.config(t)
		cfg.SSH.PrivateKey = newKey(t, t.TempDir(), "stranger").file
		wantError(t, runErr(t, cfg, ssh.Options{}), transport.ErrAuth, "refused user \""+cfg.SSH.User+"\"", "stranger")
	})
	t.Run("ssh-agent", func(t *testing.T) {
		sock := serveAgent(t, h.client)
		cfg := h.config(t)
		cfg.SSH.PrivateKey = ""
		if err := runErr(t, cfg, ssh.Options{AgentSocket: sock}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		cfg := h.config(t)
		cfg.SSH.PrivateKey = ""
		t.Setenv("SSH_AUTH_SOCK", "")
		wantError(t, runErr(t, cfg, ssh.Options{}), nil, "no SSH credentials")
	})
	t.Run("connection refused", func(t *testing.T) {
		cfg := h.config(t)
		cfg.SSH.Port = freePort(t)
		wantError(t, runErr(t, cfg, ssh.Options{}), transport.ErrUnreachable, "connection refused", "sshd")
	})
}

// serveAgent runs an in-process ssh-agent holding k.
func serveAgent(t *testing.T, k keyPair) string {
	t.Helper()
	keyring := agent.NewKeyring()
	b, err := os.ReadFile(k.file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := gossh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	return sock
}
