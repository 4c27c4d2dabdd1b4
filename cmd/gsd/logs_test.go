package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
)

// fakeLog is one host's wrapped service log: the agent answers the last
// lines, then whatever was appended after the cursor it is given.
type fakeLog struct {
	mu       sync.Mutex
	lines    []string
	code     string // when set, every call fails with this error code
	requests []protocol.LogsArgs
	closed   bool
	// asked receives the offset of follow requests (those with a
	// cursor), when there is room.
	asked chan int64
}

func (f *fakeLog) Call(_ context.Context, op string, args, result any) error {
	a := args.(protocol.LogsArgs)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, a)
	if f.code != "" {
		return &client.Error{Op: op, Detail: protocol.Error{Code: f.code, Message: "service is native"}}
	}
	res := result.(*protocol.LogsResult)
	from := 0
	if a.After != nil {
		from = int(a.After.Offset)
		select {
		case f.asked <- a.After.Offset:
		default:
		}
	} else {
		from = max(len(f.lines)-a.Lines, 0)
	}
	res.Lines = append([]string(nil), f.lines[from:]...)
	res.Cursor = protocol.LogCursor{File: "stdout.log", Offset: int64(len(f.lines))}
	return nil
}

func (f *fakeLog) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

func (f *fakeLog) add(lines ...string) {
	f.mu.Lock()
	f.lines = append(f.lines, lines...)
	f.mu.Unlock()
}

type logHostsFixture struct {
	hosts []*config.Host
	logs  map[string]*fakeLog
	dials map[string]int
	mu    sync.Mutex
}

func newLogHosts(names ...string) *logHostsFixture {
	f := &logHostsFixture{logs: map[string]*fakeLog{}, dials: map[string]int{}}
	for _, n := range names {
		f.hosts = append(f.hosts, &config.Host{Name: n})
		f.logs[n] = &fakeLog{}
	}
	return f
}

func (f *logHostsFixture) dial(_ context.Context, h *config.Host) (logsConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials[h.Name]++
	if h.Name == "down" {
		return nil, errors.New("connection refused")
	}
	return f.logs[h.Name], nil
}

func logsEnv() (*cliEnv, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, &out, &errb
}

func numbered(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s %d", prefix, i))
	}
	return out
}

func TestLogsTail(t *testing.T) {
	f := newLogHosts("web1")
	f.logs["web1"].add(numbered("line", 150)...)
	env, out, _ := logsEnv()
	if err := showLogs(context.Background(), env, "ticker", f.hosts, f.dial, 3, false); err != nil {
		t.Fatal(err)
	}
	// One host: its lines as they are, no prefix.
	if out.String() != "line 148\nline 149\nline 150\n" {
		t.Errorf("got %q", out.String())
	}
	if r := f.logs["web1"].requests; len(r) != 1 || r[0].Lines != 3 || r[0].Service != "ticker" || r[0].After != nil {
		t.Errorf("requests %+v", r)
	}
	if !f.logs["web1"].closed {
		t.Errorf("the connection was left open")
	}
}

// Several hosts: each host's lines together, in host order, prefixed by
// its name; a host that fails is reported and the others still shown.
func TestLogsSeveralHosts(t *testing.T) {
	f := newLogHosts("app1", "down", "web10")
	f.logs["app1"].add("a", "b\r")
	f.logs["web10"].add("c")
	env, out, errb := logsEnv()
	err := showLogs(context.Background(), env, "ticker", f.hosts, f.dial, 100, false)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("err = %v, want exit 1 for the unreachable host", err)
	}
	if want := "app1  | a\napp1  | b\nweb10 | c\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if !strings.Contains(errb.String(), "host down: connection refused") {
		t.Errorf("stderr: %q", errb.String())
	}
}

// A host whose agent cannot read the service's log (the agent says
// unsupported) gets a clear error.
func TestLogsUnsupported(t *testing.T) {
	f := newLogHosts("web1")
	f.logs["web1"].code = protocol.CodeUnsupported
	env, _, errb := logsEnv()
	err := showLogs(context.Background(), env, "api", f.hosts, f.dial, 100, false)
	if err == nil || !strings.Contains(errb.String(), "service.api on host web1 has no log gsd can read") {
		t.Errorf("err %v, stderr %q", err, errb.String())
	}
}

// Following polls each host with the cursor of its last answer over the
// connection it opened first, and ends without error when interrupted.
func TestLogsFollow(t *testing.T) {
	defer func(d time.Duration) { logsPollInterval = d }(logsPollInterval)
	logsPollInterval = time.Millisecond
	f := newLogHosts("web1", "web2")
	for _, l := range f.logs {
		l.asked = make(chan int64, 10)
	}
	// A request from offset n means every line before n was printed.
	waitFor := func(l *fakeLog, offset int64) {
		for off := range l.asked {
			if off == offset {
				return
			}
		}
	}
	f.logs["web1"].add("old 1", "old 2")
	ctx, cancel := context.WithCancel(context.Background())
	env, out, errb := logsEnv()
	done := make(chan error, 1)
	go func() { done <- showLogs(ctx, env, "ticker", f.hosts, f.dial, 1, true) }()

	waitFor(f.logs["web1"], 2) // following from the first answer's end
	f.logs["web1"].add("new 1", "new 2")
	f.logs["web2"].add("new 3")
	waitFor(f.logs["web1"], 4)
	waitFor(f.logs["web2"], 1)
	cancel() // as Ctrl-C does
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v, want a clean end (stderr %q)", err, errb.String())
	}
	got := out.String()
	for _, want := range []string{"web1 | old 2\n", "web1 | new 1\nweb1 | new 2\n", "web2 | new 3\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old 1") || strings.Count(got, "new 1") != 1 {
		t.Errorf("lines printed more than once or beyond -n:\n%s", got)
	}
	if f.dials["web1"] != 1 || f.dials["web2"] != 1 {
		t.Errorf("dials %v, want one session per host for the whole follow", f.dials)
	}
	reqs := f.logs["web1"].requests
	if reqs[1].After == nil || reqs[1].After.Offset != 2 || reqs[1].After.File != "stdout.log" {
		t.Errorf("the first follow request did not carry the first answer's cursor: %+v", reqs[1])
	}
	if !f.logs["web1"].closed || !f.logs["web2"].closed {
		t.Errorf("connections left open after the follow")
	}
}

func TestLogsArgumentErrors(t *testing.T) {
	wrapped := []string{"-var", "winrm_password=x", "../../examples/wrapped.hcl"}
	templated := []string{"-var", "winrm_password=x", "../../examples/templated.hcl"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"logs"}, "Usage: gsd logs"},
		{[]string{"logs", "-bogus", "ticker"}, "flag provided but not defined: -bogus"},
		{append([]string{"logs", "cach"}, templated...), `no service "cach" in the configuration (its services: api, cache); did you mean "cache"?`},
		{append([]string{"logs", "zzzzzzzz"}, templated...), `no service "zzzzzzzz" in the configuration (its services: api, cache)`},
		{append([]string{"logs", "ticker", "-host", "web9"}, wrapped...), "-host web9: no such host"},
		{append([]string{"logs", "ticker", "-n", "-1"}, wrapped...), "-n -1: the number of lines cannot be negative"},
		{[]string{"logs", "ticker", "../../examples/wrapped.hcl"}, "winrm_password"},
	} {
		r := gsdEnv(t, nil, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %+v, want exit 1 and %q", c.args, r, c.want)
		}
	}
	if r := gsd(t, "", "logs", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-f") || !strings.Contains(r.stdout, "SERVICE") {
		t.Errorf("logs -h: %+v", r)
	}
}

// Flags may come after the service name, as in gsd logs api -f.
func TestParseInterspersed(t *testing.T) {
	env, _, _ := logsEnv()
	fs := newFlagSet(env, "logs", "")
	n := fs.Int("n", 100, "")
	f := fs.Bool("f", false, "")
	pos, err := parseInterspersed(fs, []string{"api", "-n", "5", "dir", "-f", "--", "-odd"})
	if err != nil {
		t.Fatal(err)
	}
	if *n != 5 || !*f || strings.Join(pos, " ") != "api dir -odd" {
		t.Errorf("n=%d f=%v positional=%q", *n, *f, pos)
	}
}

func TestLogHostsOfService(t *testing.T) {
	cfg := &config.Config{Hosts: []*config.Host{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	svc := &config.Service{Name: "api", Hosts: []string{"a", "b"}}
	if hs, err := logHosts(cfg, svc, ""); err != nil || len(hs) != 2 || hs[1].Name != "b" {
		t.Errorf("all hosts: %v %v", hs, err)
	}
	if hs, err := logHosts(cfg, svc, "host.b"); err != nil || len(hs) != 1 || hs[0].Name != "b" {
		t.Errorf("-host host.b: %v %v", hs, err)
	}
	if _, err := logHosts(cfg, svc, "c"); err == nil || !strings.Contains(err.Error(), "service.api does not run there (its hosts: a, b)") {
		t.Errorf("-host c: %v", err)
	}
}
