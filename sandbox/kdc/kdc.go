package kdc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options describe the realm to start.
type Options struct {
	// Realm is the realm's name, e.g. "SANDBOX.GSD.TEST".
	Realm string
	// Dir holds the database, its stash, kdc.conf, krb5.conf and the
	// KDC's log; it is created when missing.
	Dir string
	// Enctypes are the realm's supported_enctypes; empty: AES256, AES128
	// and RC4-HMAC, the enctypes a Windows domain offers.
	Enctypes []string
	// Host is the address the KDC listens on; empty: 127.0.0.1.
	Host string
	// ClockOffset runs the KDC's clock off by this much (krb5kdc -T), so
	// that clients meet a KDC that disagrees with them about the time.
	ClockOffset time.Duration
	// StopWithParent ends the KDC when the process that started it dies,
	// even by kill -9 (Linux): for tests, which a timeout may kill before
	// their cleanup runs. Without it the KDC outlives its starter, as
	// gsd sandbox up needs, until Stop or a signal to PID.
	StopWithParent bool
}

// DefaultEnctypes are what a realm supports when Options.Enctypes is empty.
var DefaultEnctypes = []string{
	"aes256-cts-hmac-sha1-96:normal",
	"aes128-cts-hmac-sha1-96:normal",
	"rc4-hmac:normal",
}

// Realm is a running KDC.
type Realm struct {
	// Name is the realm's name.
	Name string
	// Dir is Options.Dir.
	Dir string
	// Config is the path of the krb5.conf clients use.
	Config string
	// Addr is the KDC's host:port, for TCP and UDP alike.
	Addr string
	// PID is krb5kdc's process id, also written to PIDFile: a caller
	// that leaves the KDC running past its own exit stops it by that.
	PID     int
	PIDFile string

	profile string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stop    sync.Once
}

// Start creates the realm's database and runs krb5kdc until it answers.
// The binaries come from Debian's krb5-kdc, krb5-admin-server and
// krb5-user; ErrMissing says which is absent.
func Start(o Options) (*Realm, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.Realm == "" || strings.ToUpper(o.Realm) != o.Realm {
		return nil, fmt.Errorf("kdc: realm %q must be given in upper case", o.Realm)
	}
	if o.Dir == "" {
		return nil, errors.New("kdc: Options.Dir is required")
	}
	if len(o.Enctypes) == 0 {
		o.Enctypes = DefaultEnctypes
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &Realm{
		Name:    o.Realm,
		Dir:     dir,
		Config:  filepath.Join(dir, "krb5.conf"),
		PIDFile: filepath.Join(dir, "krb5kdc.pid"),
		profile: filepath.Join(dir, "kdc.conf"),
	}
	// A port another process takes between the probe and krb5kdc's bind
	// makes krb5kdc exit; a few fresh ports make that harmless.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(o.Host)
		if err != nil {
			return nil, err
		}
		r.Addr = net.JoinHostPort(o.Host, strconv.Itoa(port))
		if err := r.writeConfig(o, port); err != nil {
			return nil, err
		}
		if attempt == 0 {
			if err := r.createDatabase(); err != nil {
				return nil, err
			}
		}
		if lastErr = r.run(o.ClockOffset, o.StopWithParent); lastErr == nil {
			return r, nil
		}
	}
	return nil, lastErr
}

// ErrMissing is returned when an MIT Kerberos program is not installed.
var ErrMissing = errors.New("MIT Kerberos is not installed (apt: krb5-kdc krb5-admin-server krb5-user)")

// Programs are the MIT programs the realm runs, by path or name.
var programs = []string{"/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local", "kinit", "klist"}

// Available reports whether the MIT KDC and tools are installed.
func Available() error {
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%w: %s not found", ErrMissing, filepath.Base(p))
		}
	}
	return nil
}

// freePort finds a port free for both TCP and UDP on host.
func freePort(host string) (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("kdc: no port free for both TCP and UDP on %s", host)
}

func (r *Realm) writeConfig(o Options, port int) error {
	addr := r.Addr
	domain := strings.ToLower(r.Name)
	// The same [libdefaults] serve MIT's library, python-gssapi (which is
	// MIT's) and gokrb5: no DNS for KDCs or canonical names (hosts are
	// reached by address, SPNs are given), TCP first, and RC4-HMAC allowed
	// because Windows domains still issue it (MIT 1.21 refuses it unless
	// allow_rc4 is set).
	krb5conf := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	allow_weak_crypto = true
	allow_rc4 = true
	forwardable = false
	ticket_lifetime = 10h
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96 rc4-hmac
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96 rc4-hmac
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96 rc4-hmac

[realms]
	%[1]s = {
		kdc = %[2]s
		admin_server = %[2]s
	}

[domain_realm]
	.%[3]s = %[1]s
	%[3]s = %[1]s
`, r.Name, addr, domain)
	kdcconf := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = %[2]s
	kdc_tcp_listen = %[2]s

[realms]
	%[1]s = {
		database_name = %[3]s
		key_stash_file = %[4]s
		acl_file = %[5]s
		supported_enctypes = %[6]s
		max_life = 10h
		max_renewable_life = 0
	}

[logging]
	kdc = FILE:%[7]s
	admin_server = FILE:%[8]s
	default = FILE:%[7]s
`, r.Name, addr, filepath.Join(r.Dir, "principal"), filepath.Join(r.Dir, "stash"),
		filepath.Join(r.Dir, "kadm5.acl"), strings.Join(o.Enctypes, " "),
		filepath.Join(r.Dir, "kdc.log"), filepath.Join(r.Dir, "kadmin.log"))
	for name, text := range map[string]string{"krb5.conf": krb5conf, "kdc.conf": kdcconf, "kadm5.acl": ""} {
		if err := os.WriteFile(filepath.Join(r.Dir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	// kinit and python-gssapi run as other users in some tests; the client
	// configuration holds nothing secret.
	return os.Chmod(r.Config, 0o644)
}

func (r *Realm) createDatabase() error {
	master := make([]byte, 16)
	if _, err := rand.Read(master); err != nil {
		return err
	}
	// The master password only protects the stash next to it.
	_, err := r.command("/usr/sbin/kdb5_util", nil, "-r", r.Name, "-P", hex.EncodeToString(master), "create", "-s")
	return err
}

func (r *Realm) run(offset time.Duration, stopWithParent bool) error {
	args := []string{"-n", "-r", r.Name}
	if offset != 0 {
		args = append(args, "-T", strconv.FormatInt(int64(offset/time.Second), 10))
	}
	args = append(args, "-P", r.PIDFile)
	cmd := exec.Command("/usr/sbin/krb5kdc", args...)
	cmd.Env = r.Env()
	// A file, not a pipe: the KDC may outlive this process (gsd sandbox up
	// leaves it running), and a closed pipe would kill it on its next write.
	stderr, err := os.OpenFile(filepath.Join(r.Dir, "krb5kdc.out"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = ownProcessGroup(stopWithParent)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kdc: start krb5kdc: %w", err)
	}
	r.PID = cmd.Process.Pid
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { r.waitErr = cmd.Wait(); close(r.done) }()
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		select {
		case <-r.done:
			out, _ := os.ReadFile(stderr.Name())
			return fmt.Errorf("kdc: krb5kdc exited: %v: %s%s", r.waitErr, strings.TrimSpace(string(out)), r.logTail())
		default:
		}
		if r.answers() {
			return nil
		}
		time.Sleep(delay)
	}
}

// answers reports whether the KDC answers on TCP: krb5kdc binds UDP and
// TCP before it serves either, so TCP answering means both are up.
func (r *Realm) answers() bool {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (r *Realm) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "kdc.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return ""
	}
	return "\nkdc.log:\n" + string(b)
}

// Env is the environment MIT programs and python-gssapi need to use the
// realm: its krb5.conf, and the KDC profile for the admin tools.
func (r *Realm) Env() []string {
	return append(os.Environ(), "KRB5_CONFIG="+r.Config, "KRB5_KDC_PROFILE="+r.profile)
}

// command runs an MIT program with the realm's environment; stdin, when
// given, carries what must not appear on a command line.
func (r *Realm) command(name string, stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = r.Env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kdc: %s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// kadmin runs kadmin.local queries read from stdin, so that passwords stay
// off the command line. kadmin.local reports a failed query on stderr and
// still exits 0, so its output is checked for the words it uses.
func (r *Realm) kadmin(queries ...string) error {
	in := strings.Join(queries, "\n") + "\n"
	out, err := r.command("/usr/sbin/kadmin.local", []byte(in), "-r", r.Name)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "while ") || strings.Contains(l, "error") || strings.Contains(l, "usage:") {
			return fmt.Errorf("kdc: kadmin.local: %s", strings.TrimSpace(line))
		}
	}
	return nil
}

// quote makes a kadmin argument of s, which kadmin's parser reads whole
// between double quotes.
func quote(s string) (string, error) {
	if strings.ContainsAny(s, "\"\n\r\\") {
		return "", errors.New("kdc: a principal or password may not hold quotes, backslashes or line breaks")
	}
	return `"` + s + `"`, nil
}

// AddUser creates a user principal with a password.
func (r *Realm) AddUser(name, password string) error {
	n, err := quote(name)
	if err != nil {
		return err
	}
	p, err := quote(password)
	if err != nil {
		return err
	}
	if err := r.kadmin("addprinc -pw " + p + " " + n); err != nil {
		// The password never reaches the message: kadmin does not echo it.
		return fmt.Errorf("add user %s: %w", name, err)
	}
	return nil
}

// AddService creates a service principal (e.g. HTTP/host.example.com)
// with random keys and writes them to a keytab. Enctypes, when given,
// restrict its keys (e.g. "rc4-hmac:normal") and the session keys the KDC
// issues for it, as an account set to RC4 only in a domain has.
func (r *Realm) AddService(spn, keytabPath string, enctypes ...string) error {
	n, err := quote(spn)
	if err != nil {
		return err
	}
	kt, err := quote(keytabPath)
	if err != nil {
		return err
	}
	restrict := ""
	var queries []string
	if len(enctypes) > 0 {
		restrict = ` -e "` + strings.Join(enctypes, " ") + `"`
	}
	queries = append(queries, "addprinc -randkey"+restrict+" "+n)
	if len(enctypes) > 0 {
		// MIT assumes every service takes AES256 session keys unless told
		// otherwise.
		var names []string
		for _, e := range enctypes {
			names = append(names, strings.SplitN(e, ":", 2)[0])
		}
		queries = append(queries, "setstr "+n+" session_enctypes "+`"`+strings.Join(names, " ")+`"`)
	}
	queries = append(queries, "ktadd -k "+kt+restrict+" "+n)
	if err := r.kadmin(queries...); err != nil {
		return fmt.Errorf("add service %s: %w", spn, err)
	}
	return nil
}

// ExportUserKeytab writes a user's current keys to a keytab without
// changing them, so both the password and the keytab keep working: the
// keytab a CI job logs in with.
func (r *Realm) ExportUserKeytab(name, keytabPath string) error {
	n, err := quote(name)
	if err != nil {
		return err
	}
	kt, err := quote(keytabPath)
	if err != nil {
		return err
	}
	if err := r.kadmin("ktadd -norandkey -k " + kt + " " + n); err != nil {
		return fmt.Errorf("export keytab of %s: %w", name, err)
	}
	return nil
}

// Kinit gets a ticket-granting ticket for principal into ccache (a path,
// "FILE:" optional) with MIT kinit, as a user at a laptop would. A zero
// lifetime takes the realm's default.
func (r *Realm) Kinit(principal, password, ccache string, lifetime time.Duration) error {
	if !strings.Contains(ccache, ":") {
		ccache = "FILE:" + ccache
	}
	args := []string{"-c", ccache}
	if lifetime > 0 {
		args = append(args, "-l", strconv.FormatInt(int64((lifetime+time.Second-1)/time.Second), 10)+"s")
	}
	args = append(args, principal)
	// kinit reads the password from stdin when it is not a terminal.
	if _, err := r.command("kinit", []byte(password+"\n"), args...); err != nil {
		return fmt.Errorf("kinit %s: %w", principal, err)
	}
	return nil
}

// Klist lists the tickets of a cache (klist's own output).
func (r *Realm) Klist(ccache string) (string, error) {
	if !strings.Contains(ccache, ":") {
		ccache = "FILE:" + ccache
	}
	return r.command("klist", nil, "-e", "-c", ccache)
}

// Stop ends the KDC; the directory is left for the caller to remove.
func (r *Realm) Stop() error {
	r.stop.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return nil
}
