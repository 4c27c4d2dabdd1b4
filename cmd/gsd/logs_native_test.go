package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/eventlog"
	"github.com/gsd-deploy/gsd/agent/eventlog/eventlogtest"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/config"
)

// agentConn is a session with an agent serving in this process.
type agentConn struct {
	c  *client.Client
	in io.Closer
}

func (a agentConn) Call(_ context.Context, op string, args, result any) error {
	return a.c.Call(op, args, result)
}
func (a agentConn) Close() error { return a.in.Close() }

// syncBuffer is stdout written by several hosts' followers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsOfNativeService: gsd logs of a native service shows its entries
// in the Windows event log, read by the real agent through its event log
// handler (the event log a documented fake, since Wine keeps no entries),
// and -f follows new ones.
func TestLogsOfNativeService(t *testing.T) {
	root := t.TempDir()
	st := state.New()
	st.Services["api"] = &state.Service{Spec: protocol.ServiceSpec{Name: "api", Mode: protocol.ModeNative}}
	if err := st.Save(state.Layout{Root: root}); err != nil {
		t.Fatal(err)
	}
	sources, logs := &eventlogtest.Sources{}, &eventlogtest.Logs{}
	sources.Register("Application", "api")
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	logs.Write("Application", "api", eventlog.TypeInformation, at, "listening on :8080")
	logs.Write("Application", "Tcpip", eventlog.TypeWarning, at.Add(time.Second), "not the service's")
	logs.Write("Application", "api", eventlog.TypeError, at.Add(2*time.Second), "lost the database")
	handler := &eventlog.Handler{Sources: sources, Logs: logs}
	dial := func(context.Context, *config.Host) (logsConn, error) {
		a := agent.New(agent.Options{Root: root, Kinds: map[string]agent.Handler{protocol.KindEventLog: handler}})
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		// A session lasts until its connection is closed, as over WinRM.
		go func() { a.Serve(context.Background(), inR, outW); outW.Close() }()
		c, err := client.New(outR, inW)
		return agentConn{c: c, in: inW}, err
	}
	env, out, errb := logsEnv()
	if err := showLogs(context.Background(), env, "api", []*config.Host{{Name: "web1"}}, dial, 10, false); err != nil {
		t.Fatal(err, errb.String())
	}
	want := "2024-05-01T12:00:00Z info 1: listening on :8080\n2024-05-01T12:00:02Z error 1: lost the database\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}

	defer func(d time.Duration) { logsPollInterval = d }(logsPollInterval)
	logsPollInterval = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var followed syncBuffer
	env.stdout = &followed
	done := make(chan error, 1)
	go func() { done <- showLogs(ctx, env, "api", []*config.Host{{Name: "web1"}}, dial, 1, true) }()
	waitFor := func(s string) {
		t.Helper()
		for !strings.Contains(followed.String(), s) {
			if e := errb.String(); e != "" {
				t.Fatalf("waiting for %q: %s", s, e)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("lost the database")
	logs.Write("Application", "api", eventlog.TypeWarning, at.Add(time.Minute), "slow queries")
	waitFor("slow queries")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := followed.String(); got != "2024-05-01T12:00:02Z error 1: lost the database\n2024-05-01T12:01:00Z warning 1: slow queries\n" {
		t.Errorf("follow: %q", got)
	}
}
