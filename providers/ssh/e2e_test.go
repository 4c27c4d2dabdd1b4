package ssh_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/ssh"
	"github.com/gsd-deploy/gsd/providers/transport"
)

func agentFor(t *testing.T, v agentbuild.Variant) providers.Agent {
	t.Helper()
	a, err := providers.AgentFromFile(agentbuild.Path(t, v))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEndToEnd installs the agent over Debian's sshd into a Wine host,
// gathers facts, stages an artifact once, and upgrades the agent.
func TestEndToEnd(t *testing.T) {
	h := startSSHD(t)
	current := agentFor(t, agentbuild.Current)
	other := agentFor(t, agentbuild.Other)
	cfg := h.config(t)

	tr, err := ssh.New(cfg, ssh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := transport.Run(bg(), tr, "echo out& echo err 1>&2& exit 5", nil, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 5 || strings.TrimSpace(string(res.Stdout)) != "out" || strings.TrimSpace(string(res.Stderr)) != "err" {
		t.Errorf("run: code %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}

	host, err := providers.Connect(bg(), "web2", tr, providers.Options{Agent: current})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if !host.Installed() {
		t.Error("a fresh host did not get the agent installed")
	}
	f, err := host.Facts(bg())
	if err != nil {
		t.Fatal(err)
	}
	if f.Host.OS != "windows" {
		t.Errorf("facts host %+v", f.Host)
	}
	content := make([]byte, 2<<20+5)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	art := providers.Artifact{Name: "api.exe", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}}
	st, err := host.Stage(bg(), art)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.wine.UnixPath(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, content) {
		t.Fatalf("staged file: %v", err)
	}
	before := host.SentBytes()
	if st, err := host.Stage(bg(), art); err != nil || !st.AlreadyPresent {
		t.Fatalf("second stage: %+v %v", st, err)
	}
	if sent := host.SentBytes() - before; sent != 0 {
		t.Errorf("a held artifact cost %d bytes", sent)
	}
	host.Close()

	// Upgrade: a different build is installed beside the first.
	tr2, err := ssh.New(cfg, ssh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host2, err := providers.Connect(bg(), "web2", tr2, providers.Options{Agent: other})
	if err != nil {
		t.Fatal(err)
	}
	defer host2.Close()
	if !host2.Installed() {
		t.Error("the other build was not installed")
	}
	f, err = host2.Facts(bg())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range f.Artifacts {
		found = found || a == art.SHA256
	}
	if !found {
		t.Error("the upgraded agent does not see the staged artifact")
	}
}
