//go:build windows

package agent_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

// realClient serves an agent on the real service manager in-process, with
// the binaries `make test-wine` built (see agent/scm's Windows tests).
func realClient(t *testing.T, root string) (*client.Client, string) {
	t.Helper()
	dir := os.Getenv("GSD_WINE_BIN_WIN")
	if dir == "" {
		if os.Getenv("GSD_REQUIRE_WINE") == "1" {
			t.Fatal("GSD_WINE_BIN_WIN is not set; run these tests through `make test-wine`")
		}
		t.Skip("fixture binaries not built; run `make test-wine`")
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	a := agent.New(agent.Options{Root: root, Services: scm.New(), ServiceHost: filepath.Join(dir, "gsd-agent.exe")})
	done := make(chan struct{})
	go func() { a.Serve(context.Background(), inR, outW); outW.Close(); close(done) }()
	t.Cleanup(func() { inW.Close(); <-done })
	c, err := client.New(outR, inW)
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func stageFixture(t *testing.T, c *client.Client, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.StageBytes(name, b)
	if err != nil {
		t.Fatal(err)
	}
	return res.SHA256
}

func call(t *testing.T, c *client.Client, op string, args, result any) {
	t.Helper()
	if err := c.Call(op, args, result); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

// activate switches service name to a staged release with effect, bounding
// its stop and start by 30 seconds.
func activate(t *testing.T, c *client.Client, name, release, effect string) {
	t.Helper()
	call(t, c, protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: name, Release: release, Effect: effect, TimeoutMS: 30000}, nil)
}

// deploy stages spec as a release, secrets apart as gsd sends them, and
// activates it with effect; it returns the release id.
func deploy(t *testing.T, c *client.Client, spec protocol.ServiceSpec, effect string) string {
	t.Helper()
	var staged protocol.StageReleaseResult
	call(t, c, protocol.OpStageRelease, protocol.StageReleaseArgs{
		Kind: protocol.KindService, Name: spec.Name, Spec: protocol.MustArgs(spec.WithoutSecrets()), Secrets: spec.Secrets(),
	}, &staged)
	activate(t, c, spec.Name, staged.ID, effect)
	return staged.ID
}

func TestHealthOfNativeServiceOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c, dir := realClient(t, root)
	name := "gsdtest-health-" + strings.TrimLeft(time.Now().Format(".000000"), ".")
	spec := protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeNative, Artifact: stageFixture(t, c, dir, "nativesvc.exe"),
		Args: []string{"-name", name}, Start: protocol.StartManual, Account: protocol.Account{Name: "LocalSystem"},
	}
	t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })
	id := deploy(t, c, spec, protocol.EffectStart)

	var res protocol.HealthResult
	call(t, c, protocol.OpHealth, protocol.HealthArgs{Service: name, Check: protocol.HealthCheck{TimeoutMS: 30000, IntervalMS: 20, HealthyAfterMS: 100}}, &res)
	if !res.Healthy || res.State != agent.StateRunning || res.Last != "service running" {
		t.Fatalf("running service: %+v", res)
	}
	// Nothing listens: the service runs, the probe fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	call(t, c, protocol.OpHealth, protocol.HealthArgs{Service: name, Check: protocol.HealthCheck{TCP: addr, TimeoutMS: 300, IntervalMS: 20}}, &res)
	if res.Healthy || res.Last != "connection refused" || res.Output != nil {
		t.Fatalf("refused probe: %+v", res)
	}

	activate(t, c, name, id, protocol.EffectStop)
	call(t, c, protocol.OpHealth, protocol.HealthArgs{Service: name, Check: protocol.HealthCheck{TimeoutMS: 3_600_000, IntervalMS: 20}}, &res)
	if res.Healthy || res.State != agent.StateStopped || !strings.HasPrefix(res.Last, "service stopped") || res.Probes != 3 {
		t.Fatalf("stopped service: %+v, want an early failure", res)
	}
	var cerr *client.Error
	if err := c.Call(protocol.OpLogs, protocol.LogsArgs{Service: name}, nil); !errors.As(err, &cerr) || cerr.Code() != protocol.CodeUnsupported {
		t.Fatalf("logs of a native service: %v", err)
	}
}

// The wrapper's real log files, rotating while they are read: following
// them yields whole lines only, across rotations.
func TestLogsOfWrappedServiceOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c, dir := realClient(t, root)
	name := "gsdtest-logs-" + strings.TrimLeft(time.Now().Format(".000000"), ".")
	spec := protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeWrapped, Artifact: stageFixture(t, c, dir, "console.exe"), Start: protocol.StartManual,
		Args:    []string{"-lines", "100", "-line-bytes", "100", "-crash-after", "100ms"},
		Wrapper: &protocol.WrapperSpec{LogMaxBytes: 4096, LogKeep: 3, BackoffInitialMS: 100, BackoffMaxMS: 200},
	}
	t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })
	deploy(t, c, spec, protocol.EffectStart)

	var tail protocol.LogsResult
	call(t, c, protocol.OpLogs, protocol.LogsArgs{Service: name, Stream: "stderr", Lines: 5}, &tail)
	cur := tail.Cursor
	line := strings.Repeat("x", 99)
	rotated, lines := false, 0
	for deadline := time.Now().Add(time.Minute); !rotated || lines < 300; {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: rotated %v, %d lines followed", rotated, lines)
		}
		var res protocol.LogsResult
		call(t, c, protocol.OpLogs, protocol.LogsArgs{Service: name, After: &cur}, &res)
		for _, l := range res.Lines {
			if l != line {
				t.Fatalf("followed a broken line %q (cursor %+v)", l, cur)
			}
		}
		rotated = rotated || res.Rotated
		lines += len(res.Lines)
		cur = res.Cursor
		time.Sleep(20 * time.Millisecond)
	}

	// The program crashes and is restarted; the service stays running.
	var res protocol.HealthResult
	call(t, c, protocol.OpHealth, protocol.HealthArgs{Service: name, Check: protocol.HealthCheck{TCP: "127.0.0.1:1", TimeoutMS: 300, IntervalMS: 20}}, &res)
	if res.Healthy || res.State != agent.StateRunning || len(res.Output) == 0 {
		t.Fatalf("wrapped service: %+v", res)
	}
}
