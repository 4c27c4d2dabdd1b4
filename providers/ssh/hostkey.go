package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// HostKeyError is a host key gsd does not trust, with what to do about it.
type HostKeyError struct {
	Addr        string
	Key         ssh.PublicKey // what the host presented
	Changed     bool          // a different key was expected
	Expected    []string      // where the expected keys are recorded
	KnownHosts  string        // the file that was checked, if any
	PinnedMatch bool          // checked against host_key
}

func (e *HostKeyError) Is(target error) bool { return target == transport.ErrTrust }

func (e *HostKeyError) Error() string {
	fp := e.Key.Type() + " " + ssh.FingerprintSHA256(e.Key)
	host := knownhosts.Normalize(e.Addr)
	line := knownhosts.Line([]string{host}, e.Key)
	pin := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(e.Key)))
	var b strings.Builder
	switch {
	case e.PinnedMatch:
		fmt.Fprintf(&b, "the host key of %s (%s) does not match host_key. Someone may be intercepting the connection, or the host was reinstalled; if the new key is expected, set host_key = %q", e.Addr, fp, pin)
	case e.Changed:
		fmt.Fprintf(&b, "the host key of %s has CHANGED: it presented %s, but %s records another. Someone may be intercepting the connection, or the host was reinstalled. If the change is expected, remove the old entry (ssh-keygen -R '%s' -f %s) and trust the new key by adding this line to %s:\n  %s",
			e.Addr, fp, strings.Join(e.Expected, ", "), host, e.KnownHosts, e.KnownHosts, line)
	default:
		fmt.Fprintf(&b, "the host key of %s is not known: it presented %s. Check this fingerprint with the host's administrator (on the host: ssh-keygen -lf %%ProgramData%%\\ssh\\ssh_host_ed25519_key.pub); if it matches, trust it by adding this line to %s:\n  %s\nor set host_key = %q in the host's ssh block",
			e.Addr, fp, orDefault(e.KnownHosts), line, pin)
	}
	return b.String()
}

func orDefault(file string) string {
	if file == "" {
		return "~/.ssh/known_hosts"
	}
	return file
}

// hostKeyCheck returns the callback for cfg: the pinned key when set,
// otherwise the known_hosts file.
func hostKeyCheck(cfg *config.SSH) (ssh.HostKeyCallback, error) {
	if cfg.HostKey != "" {
		want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
		if err != nil {
			return nil, fmt.Errorf("host_key %q is not a public key in authorized_keys form (\"ssh-ed25519 AAAA...\"): %w", cfg.HostKey, err)
		}
		return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), want.Marshal()) {
				return nil
			}
			return &HostKeyError{Addr: hostname, Key: key, PinnedMatch: true}
		}, nil
	}
	file := cfg.KnownHosts
	if file == "" {
		file = defaultKnownHosts()
	}
	check, err := knownhosts.New(file)
	if errors.Is(err, os.ErrNotExist) {
		// No file yet: every key is unknown, and the error says how to
		// start one.
		return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			return &HostKeyError{Addr: hostname, Key: key, KnownHosts: file}
		}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts %s: %w", file, err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var keyErr *knownhosts.KeyError
		var revoked *knownhosts.RevokedError
		switch {
		case errors.As(err, &revoked):
			return transport.Errorf(transport.ErrTrust, "the host key of %s (%s) is revoked in %s:%d", hostname, ssh.FingerprintSHA256(key), revoked.Revoked.Filename, revoked.Revoked.Line)
		case errors.As(err, &keyErr):
			e := &HostKeyError{Addr: hostname, Key: key, KnownHosts: file, Changed: len(keyErr.Want) > 0}
			for _, w := range keyErr.Want {
				e.Expected = append(e.Expected, fmt.Sprintf("%s:%d (%s %s)", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key)))
			}
			return e
		}
		return err
	}, nil
}
