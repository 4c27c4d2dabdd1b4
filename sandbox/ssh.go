package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
)

// sshUser is the account sshd lets in: the one running the sandbox, the
// only one whose login needs no system changes.
func sshUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

func keygen(path, comment string) error {
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	return nil
}

// setupSSHClient makes the client key every host trusts.
func setupSSHClient(dir string, st *State) error {
	sshDir := filepath.Join(dir, "ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	st.SSHKey = filepath.Join(sshDir, "id_ed25519")
	st.SSHUser = sshUser()
	if err := keygen(st.SSHKey, "gsd-sandbox-"+st.ID); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory; Debian makes it at boot,
		// containers often lack it.
		if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) {
			if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
				return err
			}
			st.CreatedRunSSHD = true
		}
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// setupSSHD writes the host's sshd configuration: its own host key, the
// sandbox's client key as the only credential, and a forced command that
// runs the client's command under the host's Wine prefix. It returns the
// config path and the host's public key.
func setupSSHD(o Options, st *State, h *HostState) (string, string, error) {
	hostKey := filepath.Join(h.Dir, "ssh_host_ed25519_key")
	if err := keygen(hostKey, h.Name); err != nil {
		return "", "", err
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return "", "", err
	}
	clientPub, err := os.ReadFile(st.SSHKey + ".pub")
	if err != nil {
		return "", "", err
	}
	auth := filepath.Join(h.Dir, "authorized_keys")
	if err := os.WriteFile(auth, clientPub, 0o600); err != nil {
		return "", "", err
	}
	conf := filepath.Join(h.Dir, "sshd_config")
	fields := strings.Fields(string(pub))
	text := fmt.Sprintf(`# sshd for gsd sandbox host %[1]s; written and removed by gsd sandbox.
ListenAddress %[2]s:%[3]d
HostKey %[4]s
PidFile %[5]s
AuthorizedKeysFile %[6]s
AllowUsers %[7]s
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
# Windows OpenSSH runs commands through cmd.exe; so does the sandbox, in
# the host's Wine prefix.
ForceCommand %[8]s sandbox exec %[9]s
`, h.Name, h.Address, h.SSHPort, hostKey, filepath.Join(h.Dir, "sshd.pid"), auth, st.SSHUser,
		shellQuote(o.Exe), shellQuote(h.Dir))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", "", err
	}
	if len(fields) < 2 {
		return "", "", fmt.Errorf("unexpected host key %q", pub)
	}
	return conf, fields[0] + " " + fields[1], nil
}
