package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// Options are settings beyond the configuration.
type Options struct {
	// AgentSocket is ssh-agent's socket ($SSH_AUTH_SOCK when empty). It
	// is used when the host block names no private_key.
	AgentSocket string
	// Resolver resolves the host's address (net.DefaultResolver when nil).
	Resolver *net.Resolver
}

// Transport is one SSH connection, made on first use and shared by every
// process (one session each).
type Transport struct {
	name    string
	addr    string
	user    string
	timeout time.Duration
	config  *ssh.ClientConfig
	dialer  *net.Dialer
	methods []string // for messages: what was offered
	trust   string   // where the host key is checked, for Describe
	closers []io.Closer

	mu     sync.Mutex
	client *ssh.Client
	closed bool
	// lost says why gsd dropped a connection that stopped answering
	// keepalives, for the processes that were using it.
	lost map[*ssh.Client]error
}

// New returns a transport for host, whose ssh block must be set. It does
// not connect; the first command does.
func New(host *config.Host, opts Options) (*Transport, error) {
	cfg := host.SSH
	if cfg == nil {
		return nil, fmt.Errorf("host %s has no ssh block", host.Name)
	}
	port := cfg.Port
	if port == 0 {
		port = config.DefaultSSHPort
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultSSHTimeout
	}
	t := &Transport{
		name:    host.Name,
		addr:    net.JoinHostPort(host.Address, strconv.Itoa(port)),
		user:    cfg.User,
		timeout: timeout,
		dialer:  &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: opts.Resolver},
	}
	check, err := hostKeyCheck(cfg)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", host.Name, err)
	}
	t.trust = "host key checked against known_hosts"
	if cfg.HostKey != "" {
		t.trust = "host key pinned in the configuration"
	}
	var auth []ssh.AuthMethod
	switch {
	case cfg.PrivateKey != "":
		signer, err := loadKey(cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", host.Name, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
		t.methods = append(t.methods, "the key in "+cfg.PrivateKey)
	default:
		sock := opts.AgentSocket
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock != "" {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				if cfg.Password.Value == "" {
					return nil, fmt.Errorf("host %s: cannot reach ssh-agent at %s: %w", host.Name, sock, err)
				}
			} else {
				t.closers = append(t.closers, conn)
				auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
				t.methods = append(t.methods, "keys from ssh-agent")
			}
		}
	}
	if pw := cfg.Password.Value; pw != "" {
		auth = append(auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			// Windows OpenSSH asks for the password alone; anything
			// else gets no answer rather than the password.
			answers := make([]string, len(questions))
			for i, q := range questions {
				if strings.Contains(strings.ToLower(q), "password") {
					answers[i] = pw
				}
			}
			return answers, nil
		}))
		t.methods = append(t.methods, "a password")
	}
	if len(auth) == 0 {
		return nil, fmt.Errorf("host %s: no SSH credentials: set private_key or password in its ssh block, or run ssh-agent with a key loaded", host.Name)
	}
	t.config = &ssh.ClientConfig{
		User:            cfg.User,
		Auth:            auth,
		HostKeyCallback: check,
		Timeout:         timeout,
	}
	return t, nil
}

func loadKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private_key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("private_key %s is protected by a passphrase; load it into ssh-agent (ssh-add %s) and leave private_key unset", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("private_key %s: %w", path, err)
	}
	return signer, nil
}

// connect returns the shared connection, dialling it when needed.
func (t *Transport) connect(ctx context.Context) (*ssh.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("the transport is closed")
	}
	if t.client != nil {
		return t.client, nil
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", transport.NetError(err, t.addr, "sshd", t.timeout))
	}
	// The handshake must finish within the timeout too.
	_ = conn.SetDeadline(time.Now().Add(t.timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, t.addr, t.config)
	if err != nil {
		conn.Close()
		return nil, t.handshakeError(err)
	}
	_ = conn.SetDeadline(time.Time{})
	t.client = ssh.NewClient(c, chans, reqs)
	go t.keepalive(t.client)
	go func(client *ssh.Client) {
		// A connection that dies is dropped so the next command dials.
		_ = client.Wait()
		t.mu.Lock()
		if t.client == client {
			t.client = nil
		}
		t.mu.Unlock()
	}(t.client)
	return t.client, nil
}

// Describe says how the transport reaches the host, for gsd hosts check.
func (t *Transport) Describe() transport.Description {
	return transport.Description{
		Listener:   "ssh://" + t.user + "@" + t.addr,
		Auth:       "SSH with " + strings.Join(t.methods, " or "),
		Encryption: "SSH",
		TLS:        "not used; " + t.trust,
	}
}

// keepalive asks the host for an answer every half timeout and drops a
// connection that gives none within the timeout: a host that stops
// answering otherwise leaves a session waiting forever.
func (t *Transport) keepalive(c *ssh.Client) {
	interval := max(t.timeout/2, 500*time.Millisecond)
	for {
		time.Sleep(interval)
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case err := <-answered:
			if err != nil {
				return // the connection is gone
			}
		case <-time.After(t.timeout):
			t.mu.Lock()
			if t.client == c {
				t.client = nil
			}
			if t.lost == nil {
				t.lost = map[*ssh.Client]error{}
			}
			t.lost[c] = transport.Errorf(transport.ErrTimeout, "no answer from %s within %s", t.addr, t.timeout)
			t.mu.Unlock()
			c.Close()
			return
		}
	}
}

// drop forgets c if it is the kept connection, and closes it.
func (t *Transport) drop(c *ssh.Client) {
	t.mu.Lock()
	if t.client == c {
		t.client = nil
	}
	t.mu.Unlock()
	c.Close()
}

// lostError is why c was dropped, if gsd dropped it.
func (t *Transport) lostError(c *ssh.Client) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lost[c]
}

func (t *Transport) handshakeError(err error) error {
	var keyErr *HostKeyError
	switch {
	case errors.As(err, &keyErr):
		return keyErr
	case strings.Contains(err.Error(), "unable to authenticate"):
		return transport.Errorf(transport.ErrAuth, "sshd at %s refused user %q (offered %s): check the user name and that the host accepts this key or password (administrators_authorized_keys for administrators on Windows)",
			t.addr, t.user, strings.Join(t.methods, " and "))
	}
	return fmt.Errorf("SSH handshake: %w", transport.NetError(err, t.addr, "sshd", t.timeout))
}

// Start runs commandLine in a session of its own. Windows OpenSSH runs
// it through cmd.exe, its default shell.
func (t *Transport) Start(ctx context.Context, commandLine string) (transport.Process, error) {
	c, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		// The kept connection may have died unnoticed; a new one
		// decides.
		t.drop(c)
		if c, err = t.connect(ctx); err != nil {
			return nil, err
		}
		if s, err = c.NewSession(); err != nil {
			return nil, fmt.Errorf("opening a session: %w", transport.NetError(err, t.addr, "sshd", t.timeout))
		}
	}
	p := &process{t: t, c: c, s: s, done: make(chan struct{})}
	if p.stdin, err = s.StdinPipe(); err != nil {
		s.Close()
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	p.stdout = out
	s.Stderr = &p.stderr
	if err := s.Start(commandLine); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting a command: %w", transport.NetError(err, t.addr, "sshd", t.timeout))
	}
	go p.wait()
	go func() {
		select {
		case <-ctx.Done():
			p.Close()
		case <-p.done:
		}
	}()
	return p, nil
}

// Close ends the connection and every session on it.
func (t *Transport) Close() error {
	t.mu.Lock()
	c := t.client
	t.client, t.closed = nil, true
	t.mu.Unlock()
	for _, cl := range t.closers {
		cl.Close()
	}
	if c != nil {
		return c.Close()
	}
	return nil
}

type process struct {
	t      *Transport
	c      *ssh.Client
	s      *ssh.Session
	stdin  io.WriteCloser
	stdout io.Reader
	stderr transport.TailBuffer

	done chan struct{}
	code int
	err  error
	once sync.Once
}

func (p *process) wait() {
	defer close(p.done)
	err := p.s.Wait()
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		p.code = exit.ExitStatus()
	case errors.As(err, &missing):
		p.code, p.err = -1, transport.Errorf(transport.ErrBroken, "the session with %s ended without an exit status", p.t.addr)
	default:
		p.code, p.err = -1, transport.NetError(err, p.t.addr, "sshd", p.t.timeout)
	}
	if lost := p.t.lostError(p.c); lost != nil && p.err != nil {
		p.err = lost
	}
}

func (p *process) Stdin() io.WriteCloser { return p.stdin }
func (p *process) Stdout() io.Reader     { return p.stdout }
func (p *process) Stderr() []byte        { return p.stderr.Bytes() }

func (p *process) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

// Close ends the session; sshd then ends the command.
func (p *process) Close() error {
	p.once.Do(func() {
		p.s.Close()
	})
	return nil
}

// defaultKnownHosts is ~/.ssh/known_hosts.
func defaultKnownHosts() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ssh", "known_hosts")
}
