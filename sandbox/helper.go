package sandbox

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// hostConfig is what a host's serve process reads from its directory.
type hostConfig struct {
	Name            string `json:"name"`
	Address         string `json:"address"`
	HTTPPort        int    `json:"http_port"`
	HTTPSPort       int    `json:"https_port,omitempty"`
	User            string `json:"user"`
	Password        string `json:"password"`
	MaxEnvelopeSize int    `json:"max_envelope_size"`
	CertFile        string `json:"cert_file"`
	KeyFile         string `json:"key_file"`
	Prefix          string `json:"prefix"`
	Launcher        string `json:"launcher"`
	// SSHDConfig, when set, is the sshd_config the serve process runs
	// sshd with.
	SSHDConfig string `json:"sshd_config,omitempty"`
	SSHPort    int    `json:"ssh_port,omitempty"`
	// What admins turn on; a stock host has none of it (see
	// winrs.Config). HTTPSPort is 0 without an HTTPS listener.
	Basic                bool `json:"basic,omitempty"`
	AllowUnencrypted     bool `json:"allow_unencrypted,omitempty"`
	StrictChannelBinding bool `json:"strict_channel_binding,omitempty"`
	RefuseNTLM           bool `json:"refuse_ntlm,omitempty"`
	// Keytab, when set, holds the host's HTTP/ service principal: the
	// host is a member of the sandbox's realm and accepts Kerberos.
	Keytab string `json:"keytab,omitempty"`
}

const (
	hostConfigFile = "host.json"
	readyFile      = "ready"
	logFile        = "serve.log"
)

func loadHostConfig(dir string) (*hostConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, hostConfigFile))
	if err != nil {
		return nil, err
	}
	var c hostConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *hostConfig) wineHost() *winecmd.Host {
	return &winecmd.Host{Prefix: c.Prefix, Launcher: c.Launcher}
}

// HelperMain runs the sandbox's own background roles, reached as
// `gsd sandbox serve DIR` (one host's servers, started by Up) and
// `gsd sandbox exec DIR` (the forced command of the host's sshd). It
// returns the process exit code.
func HelperMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gsd sandbox serve|exec HOST_DIR")
		return 2
	}
	switch args[0] {
	case "serve":
		if err := serve(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "gsd sandbox serve:", err)
			return 1
		}
		return 0
	case "exec":
		return sshExec(args[1])
	}
	fmt.Fprintln(os.Stderr, "usage: gsd sandbox serve|exec HOST_DIR")
	return 2
}

// serve runs one host until SIGTERM: the WinRM listeners, its wineserver
// and, with SSH, its sshd.
func serve(dir string) error {
	cfg, err := loadHostConfig(dir)
	if err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	logger := log.New(lf, cfg.Name+" ", log.LstdFlags|log.Lmicroseconds)

	if err := winecmd.StartWineserver(cfg.Prefix); err != nil {
		return fmt.Errorf("starting wineserver: %w", err)
	}
	defer func() { _ = winecmd.StopWineserver(cfg.Prefix) }()
	if err := cfg.wineHost().Warm(); err != nil {
		return err
	}

	var acceptor *kerberos.Acceptor
	if cfg.Keytab != "" {
		kt, err := keytab.Load(cfg.Keytab)
		if err != nil {
			return fmt.Errorf("the host's keytab: %w", err)
		}
		acceptor = &kerberos.Acceptor{Keytab: kt}
	}
	faults := &winrs.Faults{File: filepath.Join(dir, "faults.json")}
	srv := winrs.New(winrs.Config{
		Machine:              cfg.Name,
		User:                 cfg.User,
		Password:             cfg.Password,
		MaxEnvelopeSize:      cfg.MaxEnvelopeSize,
		Runner:               cfg.wineHost(),
		Faults:               faults,
		Logf:                 logger.Printf,
		Basic:                cfg.Basic,
		AllowUnencrypted:     cfg.AllowUnencrypted,
		StrictChannelBinding: cfg.StrictChannelBinding,
		RefuseNTLM:           cfg.RefuseNTLM,
		Kerberos:             acceptor,
	})
	defer srv.Close()
	hl, err := faults.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.HTTPPort)))
	if err != nil {
		return err
	}
	newServer := func() *http.Server {
		return &http.Server{
			Handler:           srv,
			ConnContext:       srv.ConnContext,
			ReadHeaderTimeout: 30 * time.Second,
			// Bodies are at most MaxEnvelopeSize; a client trickling one
			// must not hold a goroutine for ever.
			ReadTimeout:    5 * time.Minute,
			IdleTimeout:    2 * time.Minute,
			MaxHeaderBytes: 64 << 10,
			ErrorLog:       logger,
		}
	}
	servers := []*http.Server{newServer()}
	errc := make(chan error, 3)
	go func() { errc <- servers[0].Serve(hl) }()
	listening := fmt.Sprintf("%s (HTTP)", hl.Addr())
	if cfg.HTTPSPort > 0 {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return err
		}
		if err := srv.SetCertificate(&cert); err != nil {
			return err
		}
		sl, err := faults.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.HTTPSPort)))
		if err != nil {
			return err
		}
		hs := newServer()
		servers = append(servers, hs)
		go func() {
			errc <- hs.Serve(tls.NewListener(sl, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
		}()
		listening += fmt.Sprintf(" and %s (HTTPS)", sl.Addr())
	}

	var sshd *exec.Cmd
	if cfg.SSHDConfig != "" {
		sshd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg.SSHDConfig)
		sshd.Stdout, sshd.Stderr = lf, lf
		sshd.SysProcAttr = childAttr()
		if err := sshd.Start(); err != nil {
			return fmt.Errorf("starting sshd: %w", err)
		}
		go func() { errc <- fmt.Errorf("sshd exited: %v", sshd.Wait()) }()
		defer func() {
			_ = sshd.Process.Signal(syscall.SIGTERM)
		}()
		// Ready means ready for clients: wait until sshd listens.
		if err := waitListening(net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.SSHPort)), errc); err != nil {
			return err
		}
	}

	if err := os.WriteFile(filepath.Join(dir, readyFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	logger.Printf("serving WinRM on %s", listening)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sigs:
		logger.Printf("stopping on %v", s)
	case err := <-errc:
		logger.Printf("stopping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, hs := range servers {
		_ = hs.Shutdown(ctx)
	}
	return nil
}

func waitListening(addr string, exited chan error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case e := <-exited:
			return e
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd is not listening on %s: %v", addr, err)
		}
	}
}

// sshExec is sshd's ForceCommand: the client's command runs as Windows
// OpenSSH runs it, through cmd.exe /c, under the host's Wine prefix.
func sshExec(dir string) int {
	cfg, err := loadHostConfig(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gsd sandbox:", err)
		return 1
	}
	line := os.Getenv("SSH_ORIGINAL_COMMAND")
	if line == "" {
		fmt.Fprintln(os.Stderr, "gsd sandbox: interactive sessions are not supported; run a command")
		return 1
	}
	p, err := cfg.wineHost().Start(winecmd.Command{Line: line, Shell: true, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gsd sandbox:", err)
		return 1
	}
	go func() {
		_, _ = io.Copy(p.Stdin(), os.Stdin)
		_ = p.Stdin().Close()
	}()
	return p.Wait()
}
