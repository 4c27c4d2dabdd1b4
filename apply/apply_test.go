package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// recorder is a fake agent connection that records each operation as
// "op service" and can fail one of them.
type recorder struct {
	mu     sync.Mutex
	host   string
	log    *[]string
	failOp string
	// lockedFor is how many lock attempts fail as held by someone else
	// (with failOp "locked").
	lockedFor int
	// unhealthy lists services whose health check fails on this host.
	unhealthy map[string]bool
}

func (r *recorder) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, r.host+": "+s)
}

func (r *recorder) Call(_ context.Context, op string, args, result any) error {
	what := op
	switch a := args.(type) {
	case protocol.HealthArgs:
		what += " " + a.Service
		if res, ok := result.(*protocol.HealthResult); ok {
			*res = protocol.HealthResult{Healthy: !r.unhealthy[a.Service], Kind: a.Check.Kind(), Probes: 3, Last: "HTTP 200"}
			if !res.Healthy {
				res.Last, res.Output = "HTTP 503", []string{"panic: version 2 is broken"}
			}
		}
	case protocol.ServiceRef:
		what += " " + a.Service
	case protocol.ServiceSpec:
		what += " " + a.Name + "@" + a.Version
	case protocol.WriteFileArgs:
		what += " " + a.Service + "/" + a.Name + "=" + string(a.Content)
	case protocol.DeleteFileArgs:
		what += " " + a.Service + "/" + a.Name
	}
	r.record(what)
	if r.failOp == "locked" && op == protocol.OpLock {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.lockedFor > 0 {
			r.lockedFor--
			return &client.Error{Op: op, Detail: protocol.Error{Code: protocol.CodeLocked, Message: "held",
				Holder: &protocol.LockHolder{User: "SYSTEM", Operator: "alice@laptop", Machine: "WEB1", PID: 4711, Since: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}}
		}
		return nil
	}
	if r.failOp != "" && strings.HasPrefix(what, r.failOp) {
		return errors.New("the agent said no")
	}
	return nil
}

func (r *recorder) Stage(_ context.Context, sha string, size int64, name string, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if int64(len(b)) != size {
		return fmt.Errorf("size %d, want %d", len(b), size)
	}
	r.record("stage " + name)
	return nil
}

func (r *recorder) Close() error { r.record("close"); return nil }

func loadConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644)
	cfg, diags := config.Load(config.Options{Paths: []string{dir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

const hcl = `
host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = "x"
  }
}
host "web2" {
  address = "web2.example.internal"
  winrm {
    user     = "deploy"
    password = "x"
  }
}
build "app" {
  package = "./cmd/app"
}
service "db" {
  hosts  = ["web1", "web2"]
  binary = build.app
}
service "api" {
  hosts      = ["web1", "web2"]
  binary     = build.app
  version    = "2.0"
  depends_on = [service.db]
  file "app.yaml" {
    content   = "port: 1"
    on_change = "reload"
  }
}
`

type fixture struct {
	cfg   *config.Config
	arts  map[string]*build.Artifact
	want  Desired
	hosts map[string]*config.Host
}

func newFixture(t *testing.T) fixture {
	cfg := loadConfig(t, hcl)
	bin := filepath.Join(t.TempDir(), "app.exe")
	os.WriteFile(bin, []byte("MZ-binary"), 0o644)
	art, err := build.Prebuilt(bin)
	if err != nil {
		t.Fatal(err)
	}
	art.Build = "app" // as build.Run names what it builds
	f := fixture{cfg: cfg, arts: map[string]*build.Artifact{"build.app": art}, hosts: map[string]*config.Host{}}
	f.want = Desired{Specs: map[string]protocol.ServiceSpec{}, Files: map[string][]*config.File{}, Artifacts: map[string]*build.Artifact{art.SHA256: art}}
	for _, s := range cfg.Services {
		f.want.Specs[s.Name] = plan.Spec(s, art)
		f.want.Files[s.Name] = s.Files
	}
	for _, h := range cfg.Hosts {
		f.hosts[h.Name] = h
	}
	return f
}

func (f fixture) plan(t *testing.T, facts map[string]plan.HostFacts) *plan.Plan {
	p, err := plan.Make(f.cfg, f.arts, facts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dialer(log *[]string, failHost, failOp string) Dialer {
	return func(_ context.Context, h *config.Host) (Conn, error) {
		r := &recorder{host: h.Name, log: log}
		if h.Name == failHost {
			r.failOp = failOp
		}
		return r, nil
	}
}

func opsOf(log []string, host string) []string {
	var out []string
	for _, l := range log {
		if op, ok := strings.CutPrefix(l, host+": "); ok {
			out = append(out, op)
		}
	}
	return out
}

func TestCreateOrder(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	var log []string
	var events []string
	res := Run(context.Background(), p, f.hosts, f.want, dialer(&log, "", ""), Options{Operator: "ci", OnEvent: func(e Event) {
		events = append(events, e.Kind)
	}})
	if len(res) != 1 || res[0].Err != nil || res[0].Completed != 2 || res[0].Uploaded != 9 {
		t.Fatalf("results %+v", res)
	}
	got := strings.Join(opsOf(log, "web1"), "\n")
	want := strings.Join([]string{
		"lock",
		"stage app.exe", // uploads before any service is touched
		"ensure_service db@" + plan.ShortHash(f.arts["build.app"].SHA256),
		"start db",
		"health db",                       // each started service is gated before the next
		"write_file api/app.yaml=port: 1", // files before the service that reads them
		"ensure_service api@2.0",
		"start api",
		"health api",
		"unlock",
		"close",
	}, "\n")
	if got != want {
		t.Errorf("operations:\n%s\nwant:\n%s", got, want)
	}
	if events[0] != EventHostStart || events[len(events)-1] != EventHostDone {
		t.Errorf("events %v", events)
	}
}

func TestUpdateRestartReloadDelete(t *testing.T) {
	f := newFixture(t)
	sha := f.arts["build.app"].SHA256
	running := &protocol.ServiceStatus{State: "running"}
	dbSpec, apiSpec := f.want.Specs["db"], f.want.Specs["api"]
	facts := &protocol.Facts{Artifacts: []string{sha}, Services: []protocol.ServiceFacts{
		// db runs an old binary: replace and restart.
		{Name: "db", Mode: "native", Installed: true, Status: running, BinarySHA256: strings.Repeat("0", 64),
			Current: &protocol.Release{Artifact: strings.Repeat("0", 64), Version: "old"},
			Config:  &protocol.SCMConfig{StartType: "auto", Account: "LocalSystem", DisplayName: "db", Args: dbSpec.Args}},
		// api is current but its file changed: write and reload, no restart.
		{Name: "api", Mode: "native", Installed: true, Status: running, BinarySHA256: sha,
			Current: &protocol.Release{Artifact: sha, Version: "2.0"},
			Config:  &protocol.SCMConfig{StartType: "auto", Account: "LocalSystem", DisplayName: "api", Dependencies: []string{"db"}, Args: apiSpec.Args},
			Files:   []protocol.FileFacts{{Name: "app.yaml", SHA256: strings.Repeat("1", 64)}}},
		// legacy is no longer configured: stop and delete.
		{Name: "legacy", Installed: true, Status: running},
	}}
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: facts}})
	var log []string
	res := Run(context.Background(), p, f.hosts, f.want, dialer(&log, "", ""), Options{})
	if res[0].Err != nil || res[0].Uploaded != 0 {
		t.Fatalf("results %+v", res)
	}
	got := strings.Join(opsOf(log, "web1"), "\n")
	want := strings.Join([]string{
		"lock",
		"ensure_service db@" + plan.ShortHash(sha),
		"stop db",
		"start db",
		"health db",
		"write_file api/app.yaml=port: 1",
		"ensure_service api@2.0",
		"reload api",
		"health api",
		"stop legacy",
		"delete_service legacy",
		"unlock",
		"close",
	}, "\n")
	if got != want {
		t.Errorf("operations:\n%s\nwant:\n%s", got, want)
	}
}

// A host that fails stops its service's rollout there and names the
// step: the host before it keeps its change, the failed new service is
// stopped again (auto_rollback), and the later service is left alone on
// every host.
func TestFailureStopsTheRollout(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}, "web2": {Facts: &protocol.Facts{}}})
	var log []string
	out := Execute(context.Background(), p, f.hosts, f.want, dialer(&log, "web2", "start db"), Options{Parallelism: 2})
	res := out.Results
	if len(res) != 2 || res[0].Completed != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "service.api not changed") {
		t.Fatalf("web1: %+v", res[0])
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "host web2: service.db: the agent said no") || res[1].Completed != 0 {
		t.Errorf("web2: %+v", res[1])
	}
	if !out.Failed() || len(out.Rollouts) != 2 || !out.Rollouts[0].Stopped || out.Rollouts[1].Stopped {
		t.Fatalf("rollouts %+v", out.Rollouts)
	}
	fail := out.Rollouts[0].Failures
	if len(fail) != 1 || fail[0].Host != "web2" || fail[0].Phase != "change" || !strings.HasPrefix(fail[0].Rollback, "stopped") {
		t.Errorf("failures %+v", fail)
	}
	if got := strings.Join(out.Rollouts[1].Untouched, ","); got != "web1,web2" {
		t.Errorf("untouched by the api rollout: %s", got)
	}
	for _, h := range []string{"web1", "web2"} {
		ops := opsOf(log, h)
		if strings.Contains(strings.Join(ops, ","), "ensure_service api") || ops[len(ops)-1] != "close" || ops[len(ops)-2] != "unlock" {
			t.Errorf("%s: api touched after the failure, or no unlock: %v", h, ops)
		}
	}
}

// A graceful stop lets the step in flight finish and starts no other.
func TestGracefulStopBetweenSteps(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	stop := make(chan struct{})
	var log []string
	res := Run(context.Background(), p, f.hosts, f.want, dialer(&log, "", ""), Options{Stop: stop, OnEvent: func(e Event) {
		if e.Kind == EventStepDone && e.Service == "db" {
			close(stop) // Ctrl-C while db's step runs
		}
	}})
	if !errors.Is(res[0].Err, ErrStopped) || res[0].Completed != 1 {
		t.Fatalf("result %+v", res[0])
	}
	ops := strings.Join(opsOf(log, "web1"), ",")
	if !strings.Contains(ops, "start db") || strings.Contains(ops, "ensure_service api") || !strings.HasSuffix(ops, "unlock,close") {
		t.Errorf("operations %s", ops)
	}
}

func lockedDialer(log *[]string, attempts int) Dialer {
	return func(_ context.Context, h *config.Host) (Conn, error) {
		return &recorder{host: h.Name, log: log, failOp: "locked", lockedFor: attempts}, nil
	}
}

// A host another apply holds fails at once, naming the holder, and
// nothing happens on it.
func TestLockHeldElsewhereFailsFast(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	var log []string
	res := Run(context.Background(), p, f.hosts, f.want, lockedDialer(&log, 100), Options{})
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "locked by alice@laptop (agent pid 4711 on WEB1, since 2026-11-25T12:00:00Z)") {
		t.Errorf("result %+v", res[0])
	}
	if ops := opsOf(log, "web1"); len(ops) != 2 || ops[1] != "close" {
		t.Errorf("nothing may happen without the lock: %v", ops)
	}
}

// With -lock-timeout the apply waits for the holder to finish.
func TestLockTimeoutWaits(t *testing.T) {
	lockRetry = time.Millisecond
	defer func() { lockRetry = time.Second }()
	f := newFixture(t)
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	var log []string
	res := Run(context.Background(), p, f.hosts, f.want, lockedDialer(&log, 3), Options{LockTimeout: time.Hour})
	if res[0].Err != nil || res[0].Completed != 2 {
		t.Fatalf("result %+v", res[0])
	}
	if ops := opsOf(log, "web1"); ops[0] != "lock" || ops[3] != "lock" || ops[4] != "stage app.exe" {
		t.Errorf("operations %v", ops)
	}
}

// A stop requested before a host starts uploading sends nothing.
func TestStopBeforeUploads(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, map[string]plan.HostFacts{"web1": {Facts: &protocol.Facts{}}})
	stop := make(chan struct{})
	var log []string
	res := Run(context.Background(), p, f.hosts, f.want, dialer(&log, "", ""), Options{Stop: stop, OnEvent: func(e Event) {
		if e.Kind == EventHostStart {
			close(stop)
		}
	}})
	if !errors.Is(res[0].Err, ErrStopped) || res[0].Uploaded != 0 {
		t.Fatalf("result %+v", res[0])
	}
	if ops := strings.Join(opsOf(log, "web1"), ","); strings.Contains(ops, "stage") || ops != "lock,unlock,close" {
		t.Errorf("operations %s", ops)
	}
}
