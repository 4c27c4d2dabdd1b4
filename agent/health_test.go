package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// statusOverride reports a state and exit code of its own for every
// service, which the fake cannot: a start that never finishes, a service
// that stopped with an exit code.
type statusOverride struct {
	*fakeServices
	mu       sync.Mutex
	state    string
	exitCode uint32
}

func (s *statusOverride) Query(name string) (Observed, error) {
	obs, err := s.fakeServices.Query(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if obs.Installed && s.state != "" {
		obs.Status.State, obs.Status.ExitCode = s.state, s.exitCode
	}
	return obs, err
}

// managedAgent returns an agent (and a session with it) whose host has the
// service "api" installed by gsd in mode, running if running.
func managedAgent(t *testing.T, mode string, running bool) (*Agent, *fakeServices, *session) {
	t.Helper()
	a, fake := newTestAgent(t, testfs.TempDir(t))
	s := startSession(t, a)
	t.Cleanup(s.close)
	art := s.stage("st", "api.exe", []byte("api"), 16).SHA256
	spec := nativeSpec("api", art, "1")
	if mode == protocol.ModeWrapped {
		spec = protocol.ServiceSpec{Name: "api", Mode: protocol.ModeWrapped, Artifact: art, Version: "1"}
	}
	effect := protocol.EffectNone
	if running {
		effect = protocol.EffectStart
	}
	if _, res := s.deploy("dep", spec, effect); res.Running != running {
		t.Fatalf("activation: %+v", res)
	}
	return a, fake, s
}

func healthArgs(check protocol.HealthCheck) protocol.HealthArgs {
	return protocol.HealthArgs{Service: "api", Check: check}
}

// freeAddr is a local address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// awaitProgress reads request id's events until a progress message ends
// with suffix; it fails on the final event.
func (s *session) awaitProgress(id, suffix string) {
	s.t.Helper()
	for {
		ev := s.next()
		if ev.ID != id || ev.Kind != protocol.EventProgress {
			s.t.Fatalf("waiting for progress %q of %s, got %+v (error %+v)", suffix, id, ev, ev.Error)
		}
		if strings.HasSuffix(ev.Message, suffix) {
			return
		}
	}
}

// result reads request id's events up to its result.
func (s *session) result(id string, v any) {
	s.t.Helper()
	ev, _ := s.wait(id)
	if ev.Kind != protocol.EventResult {
		s.t.Fatalf("%s: got %+v (error %+v), want result", id, ev, ev.Error)
	}
	if err := json.Unmarshal(ev.Result, v); err != nil {
		s.t.Fatal(err)
	}
}

func TestHealthHTTPPassesAfterFailingProbes(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "status: ok\n")
	}))
	defer srv.Close()
	var res protocol.HealthResult
	progress := s.call("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{
		HTTP: srv.URL + "/healthz", BodyMatch: `(?m)^status: ok$`, TimeoutMS: 3_600_000, IntervalMS: 10,
	}), &res)
	if !res.Healthy || res.Kind != "http" || res.Probes != 4 || res.Last != "HTTP 200" || res.State != StateRunning {
		t.Fatalf("result %+v, want healthy at the 4th probe", res)
	}
	if res.HealthySince.IsZero() || res.Output != nil {
		t.Fatalf("healthy_since %v output %q", res.HealthySince, res.Output)
	}
	var msgs []string
	for _, ev := range progress {
		msgs = append(msgs, ev.Message)
	}
	if !slices.Equal(msgs, []string{"api: HTTP 503", "api: HTTP 200"}) {
		t.Fatalf("progress %q, want each new outcome once", msgs)
	}
}

func TestHealthFailingProbeResetsHealthyAfter(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	s.send("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{
		HTTP: srv.URL, TimeoutMS: 3_600_000, IntervalMS: 10, HealthyAfterMS: 300,
	}))
	s.awaitProgress("h", "HTTP 200")
	status.Store(http.StatusServiceUnavailable)
	s.awaitProgress("h", "HTTP 503")
	recovered := time.Now()
	status.Store(http.StatusOK)
	var res protocol.HealthResult
	s.result("h", &res)
	if !res.Healthy || res.Last != "HTTP 200" {
		t.Fatalf("result %+v, want healthy", res)
	}
	if res.HealthySince.Before(recovered) {
		t.Fatalf("healthy since %v, before the failing probe ended the first streak (%v)", res.HealthySince, recovered)
	}
}

func TestHealthBodyMatchLooksAtFirst64KiB(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", maxHealthBody)+"ok")
	}))
	defer srv.Close()
	var res protocol.HealthResult
	s.call("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{
		HTTP: srv.URL, BodyMatch: "ok", TimeoutMS: 100, IntervalMS: 20,
	}), &res)
	if res.Healthy || res.Probes < 2 || res.Last != `body does not match "ok"` || !res.HealthySince.IsZero() {
		t.Fatalf("result %+v, want unhealthy with the mismatch named", res)
	}
}

func TestHealthTCPRefusedThenAccepted(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	addr := freeAddr(t)
	s.send("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{TCP: addr, TimeoutMS: 3_600_000, IntervalMS: 10}))
	s.awaitProgress("h", "connection refused")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var res protocol.HealthResult
	s.result("h", &res)
	if !res.Healthy || res.Kind != "tcp" || res.Probes < 2 || res.Last != "connected to "+addr {
		t.Fatalf("result %+v, want healthy after refused probes", res)
	}
}

func TestHealthRunningKind(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	var res protocol.HealthResult
	s.call("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{TimeoutMS: 3_600_000, IntervalMS: 10, HealthyAfterMS: 50}), &res)
	if !res.Healthy || res.Kind != "running" || res.Last != "service running" || res.Probes < 2 {
		t.Fatalf("result %+v", res)
	}
}

// A stopped service fails the check after a few probes, not at the
// timeout: the call returning at all proves it, as the timeout is an hour.
func TestHealthStoppedServiceFailsEarly(t *testing.T) {
	root := testfs.TempDir(t)
	fake := newFakeServices(root)
	scm := &statusOverride{fakeServices: fake}
	a := New(Options{Root: root, Services: scm, ServiceHost: `C:\gsd\gsd-agent.exe`})
	s := startSession(t, a)
	defer s.close()
	art := s.stage("st", "api.exe", []byte("api"), 16).SHA256
	s.deploy("dep", nativeSpec("api", art, "1"), protocol.EffectNone)
	scm.mu.Lock()
	scm.state, scm.exitCode = StateStopped, 3
	scm.mu.Unlock()
	var res protocol.HealthResult
	s.call("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{HTTP: "http://" + freeAddr(t), TimeoutMS: 3_600_000, IntervalMS: 10}), &res)
	if res.Healthy || res.Probes != stoppedProbesToGiveUp || res.Last != "service stopped (exit code 3)" || res.State != StateStopped || res.ElapsedMS >= 3_600_000 {
		t.Fatalf("result %+v, want an early failure naming the exit code", res)
	}

	// A service that is still starting is waited for.
	scm.mu.Lock()
	scm.state, scm.exitCode = StateStartPending, 0
	scm.mu.Unlock()
	s.call("h2", protocol.OpHealth, healthArgs(protocol.HealthCheck{TimeoutMS: 200, IntervalMS: 10}), &res)
	if res.Healthy || res.Probes <= stoppedProbesToGiveUp || res.Last != "service start_pending" {
		t.Fatalf("result %+v, want probes until the timeout", res)
	}
}

// A service that stops in the middle of a passing streak breaks it and ends
// the check early.
func TestHealthServiceStoppingEndsStreak(t *testing.T) {
	_, fake, s := managedAgent(t, protocol.ModeNative, true)
	s.send("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{TimeoutMS: 7_200_000, IntervalMS: 10, HealthyAfterMS: 3_600_000}))
	s.awaitProgress("h", "service running")
	if err := fake.Stop("api", time.Second); err != nil {
		t.Fatal(err)
	}
	var res protocol.HealthResult
	s.result("h", &res)
	if res.Healthy || res.Last != "service stopped" || !res.HealthySince.IsZero() || res.State != StateStopped {
		t.Fatalf("result %+v", res)
	}
}

func TestHealthReturnsWhenCancelled(t *testing.T) {
	a, _, _ := managedAgent(t, protocol.ModeNative, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := protocol.Request{ID: "h", Op: protocol.OpHealth, Args: protocol.MustArgs(healthArgs(protocol.HealthCheck{
		HTTP: "http://" + freeAddr(t), TimeoutMS: 3_600_000, IntervalMS: 10,
	}))}
	emit := func(string, any) { cancel() } // after the first probe
	res, err := a.opHealth(ctx, req, emit)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("got %+v, %v; want the cancellation", res, err)
	}
}

func TestHealthRefusesBadRequests(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	cases := []struct {
		name string
		args protocol.HealthArgs
		code string
	}{
		{"bad regexp", healthArgs(protocol.HealthCheck{HTTP: srv.URL, BodyMatch: "(ok", TimeoutMS: 1000}), protocol.CodeBadRequest},
		{"body_match without http", healthArgs(protocol.HealthCheck{BodyMatch: "ok"}), protocol.CodeBadRequest},
		{"http and tcp", healthArgs(protocol.HealthCheck{HTTP: srv.URL, TCP: "localhost:1"}), protocol.CodeBadRequest},
		{"not an http URL", healthArgs(protocol.HealthCheck{HTTP: "file:///etc/passwd"}), protocol.CodeBadRequest},
		{"bad tcp address", healthArgs(protocol.HealthCheck{TCP: "localhost"}), protocol.CodeBadRequest},
		{"negative timeout", healthArgs(protocol.HealthCheck{TimeoutMS: -1}), protocol.CodeBadRequest},
		{"healthy_after not below timeout", healthArgs(protocol.HealthCheck{TimeoutMS: 100, HealthyAfterMS: 100}), protocol.CodeBadRequest},
		{"bad service name", protocol.HealthArgs{Service: `..\x`}, protocol.CodeInvalidName},
		{"unmanaged service", protocol.HealthArgs{Service: "ghost"}, protocol.CodeNotFound},
	}
	for _, c := range cases {
		s.callErr(c.name, protocol.OpHealth, c.args, c.code)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("refused checks probed the service %d times", n)
	}
}

// The check runs on the host for wrapped services too: the service stays
// running while the wrapper restarts its program, and the result says so
// and carries the last lines the program wrote.
func TestHealthWrappedServiceReportsProgramAndOutput(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	logs := a.layout.LogDir("api")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&out, "line %d\r\n", i)
	}
	writeFile(t, filepath.Join(logs, "stdout.log"), "")
	writeFile(t, filepath.Join(logs, "stderr.log"), out.String()+"panic: half a li")
	code := 3
	ws, _ := json.Marshal(protocol.WrapperStatus{Starts: 4, LastExitCode: &code, Updated: time.Now()})
	writeFile(t, a.layout.WrapperStatus("api"), string(ws))
	var res protocol.HealthResult
	s.call("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{TCP: freeAddr(t), TimeoutMS: 50, IntervalMS: 10}), &res)
	want := "connection refused (the program exited with code 3; the wrapper restarts it)"
	if res.Healthy || res.Last != want || res.State != StateRunning {
		t.Fatalf("result %+v, want last %q", res, want)
	}
	if len(res.Output) != healthOutputLines || res.Output[0] != "line 11" || res.Output[19] != "line 30" {
		t.Fatalf("output %q, want lines 11 to 30", res.Output)
	}
}

// Health and logs only read: they answer while another session holds the
// host lock.
func TestHealthAndLogsTakeNoLock(t *testing.T) {
	a, fake, s := managedAgent(t, protocol.ModeWrapped, true)
	s.call("lock", protocol.OpLock, protocol.LockArgs{Operator: "someone else"}, nil)
	other := startSession(t, New(Options{Root: a.opts.Root, Services: fake, ServiceHost: a.opts.ServiceHost}))
	defer other.close()
	other.callErr("w", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: "r-" + strings.Repeat("0", 20), Effect: protocol.EffectRestart}, protocol.CodeLocked)
	var res protocol.HealthResult
	other.call("h", protocol.OpHealth, healthArgs(protocol.HealthCheck{TimeoutMS: 1000, IntervalMS: 10}), &res)
	if !res.Healthy {
		t.Fatalf("health under someone else's lock: %+v", res)
	}
	other.call("l", protocol.OpLogs, protocol.LogsArgs{Service: "api"}, &protocol.LogsResult{})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
