package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"
)

// Defaults, in one place so the docs and the code agree.
const (
	DefaultWinRMHTTPSPort = 5986
	DefaultWinRMHTTPPort  = 5985
	DefaultSSHPort        = 22
	DefaultWinRMAuth      = AuthNTLM
	DefaultWinRMTimeout   = 60 * time.Second
	DefaultSSHTimeout     = 30 * time.Second
)

// WinRM authentication schemes.
const (
	AuthBasic    = "basic"
	AuthNTLM     = "ntlm"
	AuthKerberos = "kerberos"
	// AuthNegotiate is Kerberos first, NTLM when no Kerberos ticket can
	// be had, as Windows' Negotiate chooses.
	AuthNegotiate = "negotiate"
)

// DefaultSPN is the service principal a Windows host registers for
// WinRM under the name it is reached by, "HTTP/<name>"; an IP address
// names no principal, so it gets none.
func DefaultSPN(address string) string {
	if address == "" || net.ParseIP(address) != nil {
		return ""
	}
	return "HTTP/" + strings.TrimSuffix(address, ".")
}

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

func validAddress(a string) error {
	switch {
	case a == "":
		return fmt.Errorf("is empty")
	case strings.Contains(a, "://"):
		return fmt.Errorf("%q has a URL scheme; write only the host name or IP address (https and port are set in the winrm block)", a)
	case net.ParseIP(a) != nil:
		return nil
	case strings.Contains(a, ":"):
		return fmt.Errorf("%q has a port; set port in the winrm or ssh block instead", a)
	case len(a) > 253 || !hostnameRe.MatchString(a):
		return fmt.Errorf("%q is neither an IP address nor a valid host name", a)
	}
	return nil
}

func (l *loader) decodeHosts() []*Host {
	var out []*Host
	l.elsewhere = map[string]*Host{}
	for _, d := range sortedBy(l.hosts, func(d *hostDecl) string { return d.shape.Name }) {
		s := d.shape
		ev := l.within(d.file)
		what := func(attr string) string { return fmt.Sprintf("host %q %s", s.Name, attr) }
		h := &Host{Name: s.Name, Environment: d.environment, DeclRange: s.DefRange}
		ev.required(s.Address, fmt.Sprintf("Host %q", s.Name), "address")
		if addr, ok := ev.str(s.Address, what("address")); ok {
			if err := validAddress(addr); err != nil {
				ev.errorf(s.Address.Range(), "Invalid host address", "%s %s.", what("address"), err)
			}
			h.Address = addr
		}
		h.Labels = ev.strMap(s.Labels, what("labels"))
		h.vars = l.hostVars(ev, s)
		hostPort := ev.integer(s.Port, what("port"), 0, 1, 65535)
		h.TransportName = ev.oneOf(s.Transport, what("transport"), "", "winrm", "ssh")
		if len(s.WinRM) > 1 {
			ev.errorf(s.WinRM[1].DefRange, "Duplicate winrm block", "Host %q may have only one winrm block.", s.Name)
		}
		if len(s.SSH) > 1 {
			ev.errorf(s.SSH[1].DefRange, "Duplicate ssh block", "Host %q may have only one ssh block.", s.Name)
		}
		// A host port belongs to the transport in use; with both blocks it
		// would be ambiguous, so each block then carries its own.
		portFor := func(t string) int {
			if t == h.TransportName {
				return hostPort
			}
			return 0
		}
		switch {
		case len(s.WinRM)+len(s.SSH) == 0:
			ev.errorf(s.DefRange, "Missing transport", "Host %q needs a winrm block or an ssh block to say how gsd reaches it.", s.Name)
		case len(s.WinRM) > 0 && len(s.SSH) > 0 && h.TransportName == "":
			ev.errorf(s.SSH[0].DefRange, "Conflicting transports", "Host %q has both a winrm and an ssh block; set transport = \"winrm\" or transport = \"ssh\" to say which gsd uses.", s.Name)
		case h.TransportName == "winrm" && len(s.WinRM) == 0, h.TransportName == "ssh" && len(s.SSH) == 0:
			ev.errorf(s.Transport.Range(), "Transport not described", "Host %q uses transport %q but has no %s block.", s.Name, h.TransportName, h.TransportName)
		case h.TransportName == "":
			h.TransportName = "winrm"
			if len(s.SSH) > 0 {
				h.TransportName = "ssh"
			}
		}
		if len(s.WinRM) > 0 {
			h.WinRM = l.decodeWinRM(ev, d, s.WinRM[0], portFor("winrm"), h.Address)
		}
		if len(s.SSH) > 0 {
			h.SSH = l.decodeSSH(ev, d, s.SSH[0], portFor("ssh"))
		}
		if !l.inEnvironment(h) {
			l.elsewhere[h.Name] = h
			continue
		}
		out = append(out, h)
	}
	l.checkHostEndpoints(out)
	return out
}

// hostVars evaluates a host's vars, which services read as
// each.host.vars: a map or object of any values, sensitive ones marked.
func (l *loader) hostVars(ev *evaluator, s *hostShape) cty.Value {
	if absent(s.Vars) {
		return cty.EmptyObjectVal
	}
	ev.each = eachScope{noHost: &refusal{"Cycle through each.host",
		fmt.Sprintf("Host %q vars are part of each.host, so they cannot use it; write the value itself.", s.Name)}}
	defer func() { ev.each = eachScope{} }()
	unknowns := ev.unknowns
	v := ev.value(s.Vars, cty.DynamicPseudoType, fmt.Sprintf("host %q vars", s.Name))
	switch {
	case v == cty.NilVal && ev.unknowns > unknowns:
		return cty.DynamicVal // from a variable validate left unset
	case v == cty.NilVal:
		return cty.EmptyObjectVal
	}
	if ty := v.Type(); !ty.IsObjectType() && !ty.IsMapType() {
		ev.errorf(s.Vars.Range(), "Invalid vars", "Host %q vars must be a map of names to values, such as { port = 8080 }.", s.Name)
		return cty.EmptyObjectVal
	}
	return v
}

// checkHostEndpoints reports two host blocks that reach the same machine
// the same way: every service on them would be deployed twice to one
// service manager.
func (l *loader) checkHostEndpoints(hosts []*Host) {
	seen := map[string]*Host{}
	for _, h := range hosts {
		var port int
		switch {
		case h.Address == "":
			continue
		case h.TransportName == "winrm" && h.WinRM != nil:
			port = h.WinRM.Port
		case h.TransportName == "ssh" && h.SSH != nil:
			port = h.SSH.Port
		default:
			continue
		}
		// Hosts of different environments are never reached in one run.
		key := fmt.Sprintf("%s|%s|%d|%s", strings.ToLower(strings.TrimSuffix(h.Address, ".")), h.Transport(), port, h.Environment)
		if prev, dup := seen[key]; dup {
			l.ev.errorf(h.DeclRange, "Duplicate host address",
				"Hosts %q and %q both reach %s port %d over %s; they are the same machine.", prev.Name, h.Name, h.Address, port, h.Transport())
			continue
		}
		seen[key] = h
	}
}

// transportPort merges the host's port with its transport block's port.
func transportPort(ev *evaluator, host *hostShape, blockPort hcl.Expression, hostPort, def int) int {
	p := ev.integer(blockPort, fmt.Sprintf("host %q port", host.Name), 0, 1, 65535)
	switch {
	case p != 0 && hostPort != 0:
		ev.errorf(blockPort.Range(), "Port set twice", "Host %q sets port both on the host and in its transport block; keep one.", host.Name)
		return p
	case p != 0:
		return p
	case hostPort != 0:
		return hostPort
	}
	return def
}

func (l *loader) decodeWinRM(ev *evaluator, d *hostDecl, w *winrmShape, hostPort int, address string) *WinRM {
	name := d.shape.Name
	what := func(attr string) string { return fmt.Sprintf("host %q winrm %s", name, attr) }
	c := &WinRM{
		HTTPS:            ev.boolean(w.HTTPS, what("https"), false),
		Auth:             ev.oneOf(w.Auth, what("auth"), DefaultWinRMAuth, AuthBasic, AuthNTLM, AuthKerberos, AuthNegotiate),
		Insecure:         ev.boolean(w.Insecure, what("insecure"), false),
		AllowUnencrypted: ev.boolean(w.AllowUnencrypted, what("allow_unencrypted"), false),
		Timeout:          ev.duration(w.Timeout, what("timeout"), DefaultWinRMTimeout),
	}
	def := DefaultWinRMHTTPSPort
	if !c.HTTPS {
		def = DefaultWinRMHTTPPort
	}
	c.Port = transportPort(ev, d.shape, w.Port, hostPort, def)
	// Kerberos may log in from the ticket cache a kinit left, which
	// names the user itself.
	if !c.UsesKerberos() {
		ev.required(w.User, fmt.Sprintf("Host %q winrm", name), "user")
	}
	if u, ok := ev.str(w.User, what("user")); ok {
		if u == "" {
			ev.errorf(w.User.Range(), "Empty user", "%s is empty.", what("user"))
		}
		c.User = u
	}
	if absent(w.Password) {
		if !c.UsesKerberos() {
			ev.errorf(w.DefRange, "Missing password", "Host %q winrm needs a password for %s authentication; pass it in a sensitive variable.", name, c.Auth)
		}
	} else {
		c.Password, _ = ev.password(w.Password, what("password"))
	}
	if !absent(w.CACert) {
		c.CACert = l.caCert(ev, d.file, w.CACert, what("ca_cert"))
	}
	if c.Timeout == 0 && !absent(w.Timeout) {
		ev.errorf(w.Timeout.Range(), "Invalid duration", "%s must be longer than zero.", what("timeout"))
	}
	l.decodeKerberos(ev, d, w, c, address)
	// Combinations that make no sense are errors, not silent no-ops: a
	// user who wrote them believes something about the connection that
	// is not true. Plain HTTP is the default: with NTLM or Kerberos, gsd
	// encrypts every message with the session key, as a stock Windows
	// Server requires; only Basic cannot.
	switch {
	case !c.HTTPS && c.Auth == AuthBasic && !c.AllowUnencrypted:
		ev.errorf(w.Auth.Range(), "Basic cannot encrypt over HTTP", "Host %q winrm uses Basic authentication over plain HTTP, which has no session key to encrypt messages with. Use NTLM (remove auth), set https = true, or, if clear text is really meant, allow_unencrypted = true.", name)
	case c.HTTPS && c.AllowUnencrypted:
		ev.errorf(w.AllowUnencrypted.Range(), "allow_unencrypted without plain HTTP", "Host %q winrm uses HTTPS, so allow_unencrypted has no effect. Remove it, or set https = false if plain HTTP is meant.", name)
	case !c.HTTPS && c.Insecure:
		ev.errorf(w.Insecure.Range(), "insecure without HTTPS", "Host %q winrm uses plain HTTP (the default), which has no certificate to skip checking. Remove insecure, or set https = true.", name)
	case !c.HTTPS && c.CACert != "":
		ev.errorf(w.CACert.Range(), "ca_cert without HTTPS", "Host %q winrm uses plain HTTP (the default, with messages encrypted by the session key), so ca_cert is never used. Set https = true to use the host's HTTPS listener, or remove ca_cert.", name)
	case c.Insecure && c.CACert != "":
		ev.errorf(w.Insecure.Range(), "insecure with ca_cert", "Host %q winrm both trusts ca_cert and skips certificate checks. Keep ca_cert and remove insecure.", name)
	case !c.HTTPS && c.Auth == AuthBasic:
		ev.warnf(w.Auth.Range(), "Password sent in clear text", "Host %q uses Basic authentication over plain HTTP: anyone on the network path can read the password.", name)
	case !c.HTTPS && c.AllowUnencrypted:
		ev.warnf(w.AllowUnencrypted.Range(), "Messages sent in clear text", "Host %q winrm sends commands and files unencrypted (allow_unencrypted = true), which a stock Windows host refuses. Remove it, and gsd encrypts every message with the session key.", name)
	case !c.HTTPS && c.Port == DefaultWinRMHTTPSPort:
		at := w.Port.Range()
		if absent(w.Port) {
			at = w.DefRange
		}
		ev.warnf(at, "HTTP to the HTTPS port", "Host %q winrm speaks plain HTTP (the default) to port %d, where WinRM's HTTPS listener usually is. Set https = true if that listener is HTTPS.", name, DefaultWinRMHTTPSPort)
	}
	return c
}

// caCert resolves and checks a PEM CA certificate file.
func (l *loader) caCert(ev *evaluator, f *sourceFile, expr hcl.Expression, what string) string {
	p, ok := ev.str(expr, what)
	if !ok {
		return ""
	}
	path := resolvePath(f.dir, p)
	b, err := os.ReadFile(path)
	if err != nil {
		ev.errorf(expr.Range(), "Cannot read CA certificate", "%s: %s.", p, unwrapPathError(err))
		return path
	}
	found := false
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				ev.errorf(expr.Range(), "Invalid CA certificate", "%s: %s.", p, err)
				return path
			}
			found = true
		}
	}
	if !found {
		ev.errorf(expr.Range(), "Invalid CA certificate", "%s holds no PEM CERTIFICATE block.", p)
	}
	return path
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func (l *loader) decodeSSH(ev *evaluator, d *hostDecl, s *sshShape, hostPort int) *SSH {
	name := d.shape.Name
	what := func(attr string) string { return fmt.Sprintf("host %q ssh %s", name, attr) }
	c := &SSH{Timeout: ev.duration(s.Timeout, what("timeout"), DefaultSSHTimeout)}
	c.Port = transportPort(ev, d.shape, s.Port, hostPort, DefaultSSHPort)
	ev.required(s.User, fmt.Sprintf("Host %q ssh", name), "user")
	if u, ok := ev.str(s.User, what("user")); ok {
		if u == "" {
			ev.errorf(s.User.Range(), "Empty user", "%s is empty.", what("user"))
		}
		c.User = u
	}
	if !absent(s.Password) {
		c.Password, _ = ev.password(s.Password, what("password"))
	}
	if p, ok := ev.str(s.PrivateKey, what("private_key")); ok {
		c.PrivateKey = resolvePath(d.file.dir, p)
		if b, err := os.ReadFile(c.PrivateKey); err != nil {
			ev.errorf(s.PrivateKey.Range(), "Cannot read private key", "%s: %s.", p, unwrapPathError(err))
		} else if _, err := ssh.ParseRawPrivateKey(b); err != nil {
			if _, missing := err.(*ssh.PassphraseMissingError); !missing {
				ev.errorf(s.PrivateKey.Range(), "Invalid private key", "%s: %s.", p, err)
			}
		}
	}
	if k, ok := ev.str(s.HostKey, what("host_key")); ok {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			ev.errorf(s.HostKey.Range(), "Invalid host key", "%s must be a public key as in known_hosts or authorized_keys, such as \"ssh-ed25519 AAAA...\": %s.", what("host_key"), err)
		}
		c.HostKey = k
	}
	if p, ok := ev.str(s.KnownHosts, what("known_hosts")); ok {
		c.KnownHosts = resolvePath(d.file.dir, p)
		if _, err := os.Stat(c.KnownHosts); err != nil {
			ev.errorf(s.KnownHosts.Range(), "Cannot read known_hosts", "%s: %s.", p, unwrapPathError(err))
		}
		if c.HostKey != "" {
			ev.errorf(s.KnownHosts.Range(), "host_key with known_hosts", "Host %q pins host_key, so known_hosts is never read. Keep one.", name)
		}
	}
	return c
}
