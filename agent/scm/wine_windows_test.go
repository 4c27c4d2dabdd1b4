//go:build windows

package scm_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

// fixtureDir is where `make test-wine` put gsd-agent.exe and the fixture
// programs (sandbox/wine/goexec.sh passes it as a Windows path).
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GSD_WINE_BIN_WIN")
	if dir == "" {
		if os.Getenv("GSD_REQUIRE_WINE") == "1" {
			t.Fatal("GSD_WINE_BIN_WIN is not set; run these tests through `make test-wine`")
		}
		t.Skip("fixture binaries not built; run `make test-wine` (set GSD_REQUIRE_WINE=1 to make this a failure)")
	}
	return dir
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// newClient serves a real agent on the real SCM in-process.
func newClient(t testing.TB, root string) *client.Client {
	t.Helper()
	return newClientWith(t, agent.Options{Root: root})
}

// newClientWith is newClient with other options; the service manager and
// the service host are always the real ones.
func newClientWith(t testing.TB, opts agent.Options) *client.Client {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	opts.Services, opts.ServiceHost = scm.New(), filepath.Join(fixtureDir(t), "gsd-agent.exe")
	a := agent.New(opts)
	done := make(chan struct{})
	go func() { a.Serve(context.Background(), inR, outW); outW.Close(); close(done) }()
	t.Cleanup(func() { inW.Close(); <-done })
	c, err := client.New(outR, inW)
	if err != nil {
		t.Fatal(err)
	}
	c.Progress = func(ev protocol.Event) { t.Logf("progress: %s %s", ev.Message, ev.Result) }
	return c
}

// deploy stages spec as a release (secrets apart, as gsd sends them) and
// activates it with effect, as gsd applies a change; it returns the
// release id and what the activation did.
func deploy(t testing.TB, c *client.Client, spec protocol.ServiceSpec, effect string) (string, protocol.ActivateResult) {
	t.Helper()
	for i, f := range spec.Files {
		if f.SHA256 == "" {
			spec.Files[i].SHA256 = protocol.SHA256Hex(f.Content)
		}
	}
	var staged protocol.StageReleaseResult
	if err := c.Call(protocol.OpStageRelease, protocol.StageReleaseArgs{
		Kind: protocol.KindService, Name: spec.Name, Spec: protocol.MustArgs(spec.WithoutSecrets()), Secrets: spec.Secrets(),
	}, &staged); err != nil {
		t.Fatalf("stage_release %s: %v", spec.Name, err)
	}
	return staged.ID, activate(t, c, spec.Name, staged.ID, effect, 30000)
}

// activate switches service name to a staged release with effect: a
// start, stop, restart or reload of the current release, or a rollback to
// an earlier one. timeoutMS bounds its stop and start; 0 is the agent's
// default.
func activate(t testing.TB, c *client.Client, name, release, effect string, timeoutMS int64) protocol.ActivateResult {
	t.Helper()
	var res protocol.ActivateResult
	if err := c.Call(protocol.OpActivate, protocol.ActivateArgs{
		Kind: protocol.KindService, Name: name, Release: release, Effect: effect, TimeoutMS: timeoutMS,
	}, &res); err != nil {
		t.Fatalf("activate %s %s (%s): %v", name, release, effect, err)
	}
	return res
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func serviceName(kind string) string {
	return "gsdtest-" + kind + "-" + itoa(os.Getpid())
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func facts(t *testing.T, c *client.Client, name string) protocol.ServiceFacts {
	t.Helper()
	var f protocol.Facts
	must(t, c.Call(protocol.OpFacts, nil, &f))
	for _, s := range f.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("service %s not in facts %+v", name, f.Services)
	return protocol.ServiceFacts{}
}

// eventually polls cond; the SCM and services act asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func markerLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
