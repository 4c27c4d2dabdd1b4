package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gsd-deploy/gsd/sandbox"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

func init() {
	register(command{name: "sandbox", summary: "Start, inspect or remove local Windows test hosts (Wine)", run: runSandbox})
}

func runSandbox(env *cliEnv, args []string) error {
	if len(args) == 0 || isHelpArg(args[0]) {
		return groupHelp(env, "sandbox", args)
	}
	switch args[0] {
	case "up":
		return sandboxUp(env, args[1:])
	case "down":
		return sandboxDown(env, args[1:])
	case "status":
		return sandboxStatus(env, args[1:])
	case "fault":
		return sandboxFault(env, args[1:])
	case "serve", "exec":
		// The background roles Up starts: a host's servers, and sshd's
		// forced command. Not meant to be typed.
		if code := sandbox.HelperMain(args); code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	return groupHelp(env, "sandbox", args)
}

func sandboxUp(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "sandbox up", "")
	n := fs.Int("n", 1, "number of hosts")
	ssh := fs.Bool("ssh", false, "also run an OpenSSH server on each host")
	dir := fs.String("dir", sandbox.DefaultDir, "sandbox directory (state, prefixes, keys, logs)")
	loopback := fs.Bool("loopback", false, "use 127.x addresses even as root, instead of network namespaces")
	maxEnv := fs.Int("max-envelope-size", winrs.DefaultMaxEnvelopeSize, "WinRM MaxEnvelopeSize the hosts enforce, in bytes")
	// Hosts start as a stock Windows Server after Enable-PSRemoting; these
	// turn on what admins turn on.
	https := fs.Bool("https", false, "also listen on 5986 (HTTPS, certificate from the sandbox's CA) and write https = true into sandbox.hcl")
	basic := fs.Bool("basic", false, "enable Basic authentication (winrm/config/service/auth Basic=true)")
	unencrypted := fs.Bool("allow-unencrypted", false, "accept unencrypted messages over HTTP (winrm/config/service AllowUnencrypted=true)")
	strictCBT := fs.Bool("strict-channel-binding", false, "refuse NTLM and Kerberos over HTTPS without a channel binding (CbtHardeningLevel=Strict)")
	kerb := fs.Bool("kerberos", false, "make the hosts members of a Kerberos realm ("+sandbox.RealmName+", MIT KDC) and write auth = \"kerberos\" into sandbox.hcl")
	refuseNTLM := fs.Bool("refuse-ntlm", false, "refuse NTLM, as a domain that restricts it does (Network security: Restrict NTLM)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	st, err := sandbox.Up(sandbox.Options{
		Dir: *dir, Hosts: *n, SSH: *ssh, Loopback: *loopback, HCLDir: ".", MaxEnvelopeSize: *maxEnv,
		HTTPS: *https, Basic: *basic, AllowUnencrypted: *unencrypted, StrictChannelBinding: *strictCBT,
		Kerberos: *kerb, RefuseNTLM: *refuseNTLM,
		Logf: func(format string, a ...any) { fmt.Fprintf(env.stdout, format+"\n", a...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%d host(s) up (%s); wrote %s and %s. Stop them with 'gsd sandbox down'.\n",
		len(st.Hosts), st.Network, sandbox.HCLFile, sandbox.VarsFile)
	if st.Kerberos != nil {
		fmt.Fprintf(env.stdout, "Kerberos: get a ticket with the password in %s:\n  %s\n", sandbox.VarsFile, sandbox.KinitCommand(cwd(), st))
	}
	return nil
}

func sandboxDown(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "sandbox down", "")
	dir := fs.String("dir", sandbox.DefaultDir, "sandbox directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	err := sandbox.Down(*dir, func(format string, a ...any) { fmt.Fprintf(env.stdout, format+"\n", a...) })
	if errors.Is(err, sandbox.ErrNoSandbox) {
		fmt.Fprintf(env.stdout, "No sandbox in %s.\n", *dir)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "Sandbox removed.")
	return nil
}

func sandboxStatus(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "sandbox status", "")
	dir := fs.String("dir", sandbox.DefaultDir, "sandbox directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, hosts, err := sandbox.Status(*dir)
	if errors.Is(err, sandbox.ErrNoSandbox) {
		fmt.Fprintf(env.stdout, "No sandbox in %s.\n", *dir)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Sandbox %s (%s), user %s:\n", st.ID, st.Network, st.User)
	if k := st.Kerberos; k != nil {
		fmt.Fprintf(env.stdout, "  realm %s, KDC %s; %s\n", k.Realm, yesNo(k.Answers(), k.KDC), sandbox.KinitCommand(cwd(), st))
	}
	for _, h := range hosts {
		state := "stopped"
		if h.Running {
			state = "running"
		}
		listeners := fmt.Sprintf("http :%d", h.HTTPPort)
		if h.HTTPSPort > 0 {
			listeners += fmt.Sprintf(", https :%d", h.HTTPSPort)
		}
		fmt.Fprintf(env.stdout, "  %-10s %-15s %-8s winrm %s", h.Name, h.Address, state, yesNo(h.WinRM, listeners))
		if h.SSHPort > 0 {
			fmt.Fprintf(env.stdout, "  ssh %s", yesNo(h.SSH, fmt.Sprintf(":%d", h.SSHPort)))
		}
		fmt.Fprintf(env.stdout, "  log %s\n", h.ServeLog())
	}
	return nil
}

// cwd is the working directory, for paths shown relative to it.
func cwd() string {
	d, _ := os.Getwd()
	return d
}

func yesNo(ok bool, what string) string {
	if ok {
		return what
	}
	return what + " (not answering)"
}

func sandboxFault(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "sandbox fault", "HOST")
	dir := fs.String("dir", sandbox.DefaultDir, "sandbox directory")
	cut := fs.Int64("cut-after", 0, "close each new connection after this many bytes")
	delay := fs.Int("delay-ms", 0, "delay every response by this many milliseconds")
	refuse := fs.Bool("refuse", false, "refuse connections")
	status500 := fs.Bool("500", false, "answer every request with HTTP 500")
	drop := fs.Bool("drop", false, "drop every connection, open and new, until faults are switched off")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errReported
	}
	st, err := sandbox.LoadState(*dir)
	if err != nil {
		return fmt.Errorf("no sandbox in %s: %w", *dir, err)
	}
	for _, h := range st.Hosts {
		if h.Name == fs.Arg(0) {
			s := winrs.FaultSettings{CutAfterBytes: *cut, DelayMS: *delay, Refuse: *refuse, Status500: *status500, Drop: *drop}
			if err := winrs.WriteFaultFile(h.FaultFile(), s); err != nil {
				return err
			}
			if s == (winrs.FaultSettings{}) {
				fmt.Fprintf(env.stdout, "%s: faults off\n", h.Name)
			} else {
				fmt.Fprintf(env.stdout, "%s: %+v (in %s)\n", h.Name, s, filepath.Base(h.FaultFile()))
			}
			return nil
		}
	}
	return fmt.Errorf("no host %q in the sandbox", fs.Arg(0))
}
