package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// StateFile, inside the sandbox directory, lists everything Up made so
// Down can remove it even after a crash half-way through Up.
const StateFile = "state.json"

// lockFile, inside the sandbox directory, is locked by Up and Down.
const lockFile = ".lock"

// Network modes.
const (
	NetNamespaces = "netns"
	NetLoopback   = "loopback"
)

// State is the sandbox's record of what exists.
type State struct {
	Version  int    `json:"version"`
	ID       string `json:"id"`
	Network  string `json:"network"`
	Bridge   string `json:"bridge,omitempty"`
	Password string `json:"password"`
	User     string `json:"user"`
	CACert   string `json:"ca_cert"`
	SSH      bool   `json:"ssh"`
	// SSHKey is the client private key for the ssh blocks.
	SSHKey string `json:"ssh_key,omitempty"`
	// SSHUser is the login the hosts' sshd accepts.
	SSHUser string      `json:"ssh_user,omitempty"`
	Hosts   []HostState `json:"hosts"`
	// Files are files Up wrote outside the sandbox directory, with the
	// content's SHA-256, so Down removes them only if they are unchanged.
	Files []OwnedFile `json:"files,omitempty"`
	// CreatedRunSSHD records that Up made /run/sshd (sshd's privilege
	// separation directory), so Down removes it too.
	CreatedRunSSHD bool `json:"created_run_sshd,omitempty"`
	// Kerberos is the sandbox's realm, with -kerberos.
	Kerberos *RealmState `json:"kerberos,omitempty"`
}

// RealmState is the sandbox's Kerberos realm: the domain its hosts are
// members of.
type RealmState struct {
	Realm string `json:"realm"`
	// Dir holds the KDC's database, configuration and log.
	Dir string `json:"dir"`
	// Config is the krb5.conf clients use (KRB5_CONFIG).
	Config string `json:"krb5_conf"`
	// KDC is the KDC's host:port.
	KDC string `json:"kdc"`
	// KDCPID is krb5kdc's process id, which Down stops.
	KDCPID int `json:"kdc_pid,omitempty"`
	// Principal is the user's principal, user@REALM, whose password is
	// the sandbox's.
	Principal string `json:"principal"`
	// ClientKeytab holds Principal's keys: a login for CI without kinit.
	ClientKeytab string `json:"client_keytab,omitempty"`
}

// OwnedFile is a file Up wrote.
type OwnedFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// HostState is one host.
type HostState struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	HTTPPort   int    `json:"http_port"`
	HTTPSPort  int    `json:"https_port"`
	SSHPort    int    `json:"ssh_port,omitempty"`
	SSHHostKey string `json:"ssh_host_key,omitempty"`
	Dir        string `json:"dir"`
	Prefix     string `json:"prefix"`
	Namespace  string `json:"namespace,omitempty"`
	Veth       string `json:"veth,omitempty"`
	ServePID   int    `json:"serve_pid,omitempty"`
	// SPN is the host's HTTP service principal, with -kerberos.
	SPN string `json:"spn,omitempty"`
}

// Answers reports whether the realm's KDC accepts connections.
func (k *RealmState) Answers() bool {
	c, err := net.DialTimeout("tcp", k.KDC, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// FaultFile is where a host reads its fault injection settings (JSON, see
// winrs.FaultSettings).
func (h HostState) FaultFile() string { return filepath.Join(h.Dir, "faults.json") }

// LoadState reads dir's state; os.ErrNotExist when there is no sandbox.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

// create writes the first state, failing if one exists: whatever made it
// owns the directory.
func (s *State) create(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, StateFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("a sandbox is already up in %s; run 'gsd sandbox down' first", dir)
		}
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *State) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	// The state holds the password; only the owner reads it.
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}

// ErrNoSandbox means there is no state file in the directory.
var ErrNoSandbox = errors.New("no sandbox is up here")
