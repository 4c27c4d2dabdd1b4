package ssh_test

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/ssh"
	"github.com/gsd-deploy/gsd/providers/transport"
)

const testPassword = "Ssh-secret-9"

// passwordServer is a minimal SSH server that accepts one password and
// answers every command with exit status 0. Debian's sshd would check the
// system's password database, which a test must not touch.
func passwordServer(t *testing.T) (string, gossh.PublicKey) {
	t.Helper()
	hostKey := newKey(t, t.TempDir(), "host")
	cfg := &gossh.ServerConfig{PasswordCallback: func(c gossh.ConnMetadata, pw []byte) (*gossh.Permissions, error) {
		if c.User() == "deploy" && string(pw) == testPassword {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}}
	cfg.AddHostKey(hostKey.signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
			go serveConn(c, cfg)
		}
	}()
	return l.Addr().String(), hostKey.public
}

func serveConn(c net.Conn, cfg *gossh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := gossh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	for nc := range chans {
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for r := range requests {
				if r.Type == "exec" {
					_ = r.Reply(true, nil)
					_, _ = fmt.Fprint(ch, "ran\r\n")
					_, _ = ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{0}))
					return
				}
				_ = r.Reply(false, nil)
			}
		}()
	}
}

func TestPassword(t *testing.T) {
	addr, hostKey := passwordServer(t)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	cfg := &config.Host{Name: "web3", Address: host, SSH: &config.SSH{
		User:     "deploy",
		Port:     p,
		Password: config.Text{Value: testPassword, Sensitive: true},
		HostKey:  authorizedLine(hostKey),
		Timeout:  10 * time.Second,
	}}
	t.Setenv("SSH_AUTH_SOCK", "")
	tr, err := ssh.New(cfg, ssh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	res, err := transport.Run(bg(), tr, "exit 0", nil, 1024)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "ran" {
		t.Fatalf("run: %+v %v", res, err)
	}

	cfg.SSH.Password.Value = "not-" + testPassword
	err = runErr(t, cfg, ssh.Options{})
	wantError(t, err, transport.ErrAuth, `refused user "deploy"`, "a password")
	if strings.Contains(err.Error(), cfg.SSH.Password.Value) || strings.Contains(err.Error(), testPassword) {
		t.Errorf("error %q contains a password", err)
	}
}
