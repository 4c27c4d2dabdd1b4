package winrm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
)

func randomArtifact(t *testing.T, name string, size int) (providers.Artifact, []byte) {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return providers.Artifact{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(size), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}, b
}

// TestEndToEnd drives one Wine host over each scheme in turn: the first
// connection installs the agent, later ones find it; an artifact is
// staged, verified on disk, and never sent twice; a different agent build
// is installed beside the first.
func TestEndToEnd(t *testing.T) {
	h := startHost(t, hostOptions{})
	current := agentFor(t, agentbuild.Current)
	other := agentFor(t, agentbuild.Other)
	if current.SHA256 == other.SHA256 {
		t.Fatal("the two agent builds have the same SHA-256")
	}
	ctx := context.Background()
	for i, s := range schemes {
		t.Run(s.name, func(t *testing.T) {
			tr := h.transport(t, s, winrm.Options{})
			host := connect(t, tr, current)
			if got, want := host.Installed(), i == 0; got != want {
				t.Errorf("Installed() = %v, want %v (the first scheme installs, later ones find the agent)", got, want)
			}
			if v := host.Hello().AgentVersion; v == "" {
				t.Error("no agent version in hello")
			}
			f, err := host.Facts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Host.OS != "windows" || f.Host.AgentVersion == "" {
				t.Errorf("facts host = %+v", f.Host)
			}

			art, content := randomArtifact(t, "api.exe", 3<<20+17)
			res, err := host.Stage(ctx, art)
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyPresent || res.SHA256 != art.SHA256 || res.Size != art.Size {
				t.Fatalf("stage result %+v", res)
			}
			onDisk, err := os.ReadFile(h.unixPath(t, res.Path))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(onDisk, content) {
				t.Fatal("the staged file differs from the artifact")
			}

			// Held now: staging again sends the host nothing. (Input is
			// counted; Receive polls go on regardless.)
			before := tr.InputBytesSent()
			res, err = host.Stage(ctx, art)
			if err != nil || !res.AlreadyPresent {
				t.Fatalf("second stage: %+v, %v", res, err)
			}
			if sent := tr.InputBytesSent() - before; sent != 0 {
				t.Errorf("staging a held artifact sent %d bytes", sent)
			}
			// A new session learns it from facts, in one small round trip.
			host.Close()
			tr2 := h.transport(t, s, winrm.Options{})
			host2 := connect(t, tr2, current)
			before = tr2.InputBytesSent()
			res, err = host2.Stage(ctx, art)
			if err != nil || !res.AlreadyPresent {
				t.Fatalf("stage in a new session: %+v, %v", res, err)
			}
			if sent := tr2.InputBytesSent() - before; sent > 4<<10 {
				t.Errorf("staging a held artifact in a new session sent %d bytes for a %d-byte artifact", sent, art.Size)
			}
		})
	}

	t.Run("upgrade", func(t *testing.T) {
		tr := h.transport(t, httpsBasic, winrm.Options{})
		before := tr.InputBytesSent()
		host := connect(t, tr, other)
		if !host.Installed() {
			t.Fatal("a host with only another build did not get this one")
		}
		if sent := tr.InputBytesSent() - before; sent != other.Size {
			t.Errorf("sent %d bytes of input, want the %d-byte agent", sent, other.Size)
		}
		for _, a := range []providers.Agent{current, other} {
			b, err := os.ReadFile(h.unixPath(t, a.Path()))
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != a.SHA256 {
				t.Errorf("%s holds other bytes", a.Path())
			}
		}
		if _, err := host.Facts(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("dial from configuration", func(t *testing.T) {
		host, err := providers.Dial(context.Background(), h.config(defaultScheme), providers.Options{Agent: current})
		if err != nil {
			t.Fatal(err)
		}
		defer host.Close()
		if _, err := host.Facts(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("small envelope", func(t *testing.T) {
		// A host whose MaxEnvelopeSize is below gsd's first guess: the
		// first Send is refused whole, smaller ones follow.
		small := startHost(t, hostOptions{maxEnvelope: 150 * 1024})
		tr := small.transport(t, defaultScheme, winrm.Options{})
		host := connect(t, tr, current)
		if tr.MaxEnvelopeSize() > 150*1024 {
			t.Errorf("envelope size still %d", tr.MaxEnvelopeSize())
		}
		art, _ := randomArtifact(t, "small.exe", 1<<20)
		if _, err := host.Stage(context.Background(), art); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("run", func(t *testing.T) {
		tr := h.transport(t, httpBasic, winrm.Options{})
		res, err := transport.Run(context.Background(), tr, "echo out& echo err 1>&2& exit 3", nil, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 3 || strings.TrimSpace(string(res.Stdout)) != "out" || strings.TrimSpace(string(res.Stderr)) != "err" {
			t.Errorf("got code %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
		}
	})
}
