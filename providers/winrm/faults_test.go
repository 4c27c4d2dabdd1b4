package winrm_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// checkStore asserts that the host's artifact store holds exactly the
// complete artifact for sha and no temporary files.
func (h *sandboxHost) checkStore(t *testing.T, art providers.Artifact, content []byte) {
	t.Helper()
	dir := h.unixPath(t, `C:\ProgramData\gsd\artifacts\`+art.SHA256)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != art.Name {
			t.Errorf("stray file %s in the artifact's directory", e.Name())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, art.Name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, content) {
		t.Error("the stored artifact differs from what was sent")
	}
}

// holds reports whether the host's facts list sha.
func holds(t *testing.T, host *providers.Host, sha string) bool {
	t.Helper()
	f, err := host.Facts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range f.Artifacts {
		if a == sha {
			return true
		}
	}
	return false
}

// TestUploadFaults cuts connections mid-upload and makes the host stop
// answering: nothing partial becomes an artifact, the error says what
// happened, and a retry succeeds.
func TestUploadFaults(t *testing.T) {
	h := startHost(t, hostOptions{})
	agent := agentFor(t, agentbuild.Current)
	s := schemes[1]
	// Install the agent before any fault, so faults hit the artifact.
	connect(t, h.transport(t, s, winrm.Options{}), agent).Close()
	ctx := context.Background()

	t.Run("cut without retry", func(t *testing.T) {
		art, content := randomArtifact(t, "cut.exe", 6<<20)
		// Only connections made from now on are cut, so the session
		// starts after the fault is set.
		h.faults.Set(winrs.FaultSettings{CutAfterBytes: 1 << 20})
		tr := h.transport(t, s, winrm.Options{})
		host, err := providers.Connect(ctx, "web1", tr, providers.Options{Agent: agent, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer host.Close()
		_, err = host.Stage(ctx, art)
		wantError(t, err, transport.ErrBroken, "host web1: staging cut.exe:", "connection to "+h.httpsAddr+" broke")
		t.Log(err)

		// Connections made while the fault was on stay faulty, as the
		// sandbox's injection works per connection; a healed link means
		// new ones.
		h.faults.Set(winrs.FaultSettings{})
		tr.CloseIdleConnections()
		if holds(t, host, art.SHA256) {
			t.Fatal("a cut upload was recorded as staged")
		}
		// The retry starts over in a new session and succeeds.
		if _, err := host.Stage(ctx, art); err != nil {
			t.Fatal(err)
		}
		h.checkStore(t, art, content)
	})

	t.Run("cut with automatic retry", func(t *testing.T) {
		art, content := randomArtifact(t, "retry.exe", 6<<20)
		h.faults.Set(winrs.FaultSettings{CutAfterBytes: 1 << 20})
		tr := h.transport(t, s, winrm.Options{})
		host := connect(t, tr, agent)
		opens := 0
		open := art.Open
		art.Open = func() (io.ReadCloser, error) {
			opens++
			if opens == 2 {
				// The link recovers before the second attempt.
				h.faults.Set(winrs.FaultSettings{})
				tr.CloseIdleConnections()
			}
			return open()
		}
		if _, err := host.Stage(ctx, art); err != nil {
			t.Fatal(err)
		}
		if opens != 2 {
			t.Errorf("the artifact was opened %d times, want 2 (one cut attempt, one retry)", opens)
		}
		h.checkStore(t, art, content)
	})

	t.Run("host stops answering", func(t *testing.T) {
		art, content := randomArtifact(t, "slow.exe", 2<<20)
		cfg := h.config(s)
		cfg.WinRM.Timeout = 3 * time.Second
		tr, err := winrm.New(cfg, winrm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		host, err := providers.Connect(ctx, "web1", tr, providers.Options{Agent: agent, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer host.Close()
		if _, err := host.Facts(ctx); err != nil {
			t.Fatal(err)
		}
		h.faults.Set(winrs.FaultSettings{DelayMS: 5000})
		_, err = host.Stage(ctx, art)
		wantError(t, err, transport.ErrTimeout, "host web1: staging slow.exe:", "no answer from "+h.httpsAddr+" within 3s")
		t.Log(err)

		h.faults.Set(winrs.FaultSettings{})
		if _, err := host.Stage(ctx, art); err != nil {
			t.Fatal(err)
		}
		h.checkStore(t, art, content)
	})

	t.Run("slow host within the timeout", func(t *testing.T) {
		art, content := randomArtifact(t, "patient.exe", 1<<20)
		h.faults.Set(winrs.FaultSettings{DelayMS: 200})
		defer h.faults.Set(winrs.FaultSettings{})
		cfg := h.config(s)
		cfg.WinRM.Timeout = 10 * time.Second
		tr, err := winrm.New(cfg, winrm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		host, err := providers.Connect(ctx, "web1", tr, providers.Options{Agent: agent, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer host.Close()
		if _, err := host.Stage(ctx, art); err != nil {
			t.Fatal(err)
		}
		h.checkStore(t, art, content)
	})

	t.Run("host refuses connections", func(t *testing.T) {
		h.faults.Set(winrs.FaultSettings{Refuse: true})
		defer h.faults.Set(winrs.FaultSettings{})
		// The listener closes its socket within a poll interval; until
		// then a connection may still get in, or be cut another way. A
		// failed Connect closes its transport, so each try has its own.
		var err error
		for i := 0; i < 50; i++ {
			var host *providers.Host
			host, err = providers.Connect(ctx, "web1", h.transport(t, s, winrm.Options{}), providers.Options{Agent: agent, Retries: -1})
			if err == nil {
				host.Close()
			} else if strings.Contains(err.Error(), "refused") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		wantError(t, err, transport.ErrUnreachable, "host web1: checking the agent:", "connection refused by "+h.httpsAddr)
	})
}
