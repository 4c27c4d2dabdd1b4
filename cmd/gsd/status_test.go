package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/views"
)

// fakeAgent answers facts and health for one host and records the health
// checks it was asked for.
type fakeAgent struct {
	facts  protocol.Facts
	health map[string]protocol.HealthResult // by service; missing: not_found
	ops    []string

	mu     sync.Mutex
	asked  int // health requests, answered or not
	checks []protocol.HealthArgs
	closed bool
}

func (f *fakeAgent) Facts(context.Context) (protocol.Facts, error) { return f.facts, nil }
func (f *fakeAgent) Hello() protocol.Hello {
	return protocol.Hello{AgentVersion: "test", Ops: f.ops}
}
func (f *fakeAgent) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

func (f *fakeAgent) Call(_ context.Context, op string, args, result any) error {
	if op != protocol.OpHealth {
		return &client.Error{Op: op, Detail: protocol.Error{Code: protocol.CodeUnknownOp, Message: "unknown op " + op}}
	}
	a := args.(protocol.HealthArgs)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if !slices.Contains(f.ops, protocol.OpHealth) {
		return &client.Error{Op: op, Detail: protocol.Error{Code: protocol.CodeUnknownOp, Message: "unknown op " + op}}
	}
	f.checks = append(f.checks, a)
	res, ok := f.health[a.Service]
	if !ok {
		return &client.Error{Op: op, Detail: protocol.Error{Code: protocol.CodeNotFound, Message: "no service " + a.Service}}
	}
	*result.(*protocol.HealthResult) = res
	return nil
}

const statusSecret = "s3cr3t-t0ken-value"

const statusConfig = `
variable "token" {
  type      = string
  sensitive = true
}
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
service "api" {
  hosts   = ["web1", "web2"]
  binary  = "app.exe"
  version = "1.1.0"
  env     = { TOKEN = var.token, MODE = "prod" }
  health {
    http    = "http://127.0.0.1:8080/healthz"
    timeout = "60s"
    healthy_after = "10s"
  }
}
service "worker" {
  hosts  = ["web1"]
  binary = "app.exe"
  mode   = "wrapped"
}
service "batch" {
  hosts  = ["web1"]
  binary = "app.exe"
  start  = "manual"
}
`

// loadStatusConfig loads statusConfig with its prebuilt binary, the
// secret token given as a variable.
func loadStatusConfig(t *testing.T) (*config.Config, map[string]*build.Artifact) {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "app.exe")
	os.WriteFile(exe, []byte("MZ app"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(statusConfig), 0o644)
	cfg, diags := config.Load(config.Options{Paths: []string{dir}, VarArgs: []config.VarArg{{Value: "token=" + statusSecret}}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	art, err := build.Prebuilt(exe)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, map[string]*build.Artifact{"file:" + exe: art}
}

// deployedFacts are the facts of a host on which the agent applied the
// service as configured and it runs: what a no-op plan finds.
func deployedFacts(svc *config.Service, art *build.Artifact) protocol.ServiceFacts {
	spec := plan.Spec(svc, art)
	redacted := spec.Redacted()
	f := protocol.ServiceFacts{
		Name: spec.Name, Mode: spec.Mode, Installed: true,
		Config: &protocol.SCMConfig{Args: spec.Args, StartType: spec.Start, Account: spec.Account.Name,
			Dependencies: spec.DependsOn, DisplayName: spec.DisplayName, Description: spec.Description},
		Status:       &protocol.ServiceStatus{State: "running", PID: 4242},
		EnvSHA256:    protocol.HashEnv(spec.Env),
		BinarySHA256: spec.Artifact,
		Current:      &protocol.Release{Artifact: spec.Artifact, Version: spec.Version, Activated: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)},
		LastApplied:  &redacted,
	}
	if spec.Mode == config.ModeWrapped {
		f.Config.Args = []string{"service-host", "-service", spec.Name}
	}
	return f
}

// statusFixture is web1 with api (its token changed on the host since),
// worker (wrapped, restarted twice) and batch (manual, stopped), plus a
// service the configuration no longer has; web2 cannot be reached.
func statusFixture(t *testing.T) (*config.Config, map[string]*build.Artifact, *fakeAgent, func(context.Context, *config.Host) (statusConn, error)) {
	cfg, arts := loadStatusConfig(t)
	var art *build.Artifact
	for _, a := range arts {
		art = a
	}
	api := deployedFacts(cfg.Service("api"), art)
	api.EnvSHA256 = protocol.HashEnv(map[string]string{"TOKEN": "an older token", "MODE": "prod"})
	api.Previous = &protocol.Release{Artifact: strings.Repeat("0", 64), Version: "1.0.0"}
	worker := deployedFacts(cfg.Service("worker"), art)
	code := 3
	worker.Wrapper = &protocol.WrapperStatus{Starts: 3, ChildPID: 77, LastExitCode: &code, Updated: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)}
	batch := deployedFacts(cfg.Service("batch"), art)
	batch.Status = &protocol.ServiceStatus{State: "stopped"}
	gone := protocol.ServiceFacts{Name: "legacy", Mode: "native", Installed: true, Status: &protocol.ServiceStatus{State: "running"}}
	source := func(name string) protocol.ResourceFacts {
		return protocol.ResourceFacts{Kind: protocol.KindEventLog, Name: name, Installed: true,
			LastApplied: json.RawMessage(`{"name":"` + name + `","for":"service.` + name + `","log":"Application"}`),
			Status:      &protocol.ResourceStatus{State: "registered"}}
	}
	web1 := &fakeAgent{
		facts: protocol.Facts{Services: []protocol.ServiceFacts{worker, api, batch, gone}, Artifacts: []string{art.SHA256},
			Resources: []protocol.ResourceFacts{source("api"), source("batch")}},
		health: map[string]protocol.HealthResult{
			"api":    {Healthy: false, Kind: "http", Last: "HTTP 503", State: "running"},
			"worker": {Healthy: true, Kind: "running", Last: "running", State: "running"},
			"legacy": {Healthy: true, Kind: "running", State: "running"},
		},
		ops: []string{protocol.OpFacts, protocol.OpHealth},
	}
	dial := func(_ context.Context, h *config.Host) (statusConn, error) {
		if h.Name == "web2" {
			return nil, errors.New("dial tcp web2.example.internal:5986: connect: connection refused")
		}
		return web1, nil
	}
	return cfg, arts, web1, dial
}

func findStatus(t *testing.T, st *views.Status, host, svc string) *views.ServiceStatus {
	t.Helper()
	for _, h := range st.Hosts {
		if h.Host != host {
			continue
		}
		for _, s := range h.Services {
			if s.Service == svc {
				return s
			}
		}
	}
	t.Fatalf("no %s on %s in the status", svc, host)
	return nil
}

func TestStatusFromFacts(t *testing.T) {
	cfg, arts, web1, dial := statusFixture(t)
	st, err := makeStatus(context.Background(), cfg, arts, cfg.Hosts, nil, dial, 10, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !web1.closed {
		t.Errorf("the host's connection was not closed")
	}

	// One quick check per running service, the configured kind without
	// its patience; the stopped one is not asked about.
	byService := map[string]protocol.HealthArgs{}
	for _, c := range web1.checks {
		byService[c.Service] = c
	}
	if len(web1.checks) != 3 || len(byService) != 3 {
		t.Errorf("health checks: %+v, want one each for api, worker and legacy", web1.checks)
	}
	apiCheck := byService["api"].Check
	if apiCheck.HTTP != "http://127.0.0.1:8080/healthz" || apiCheck.HealthyAfterMS != 0 || apiCheck.TimeoutMS != statusHealthTimeout.Milliseconds() {
		t.Errorf("api's check: %+v", apiCheck)
	}
	if c := byService["worker"].Check; c.Kind() != "running" {
		t.Errorf("a service without a health block is checked by %q, want running", c.Kind())
	}
	if _, asked := byService["batch"]; asked {
		t.Errorf("the stopped service was checked")
	}

	api := findStatus(t, st, "web1", "api")
	if api.Drift == nil || strings.Join(api.Drift.Attributes, ",") != "env.TOKEN" || api.Drift.Action != "update" {
		t.Errorf("api drift: %+v", api.Drift)
	}
	if api.Health.Status != views.Unhealthy || api.Health.Detail != "HTTP 503" {
		t.Errorf("api health: %+v", api.Health)
	}
	if api.Restarts != nil {
		t.Errorf("a native service's restarts are unknown, got %v", deref(api.Restarts))
	}
	if api.Release.Version != "1.1.0" || api.Previous.Version != "1.0.0" || !api.Since.Equal(time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("api releases: %+v, %+v, since %v", api.Release, api.Previous, api.Since)
	}

	worker := findStatus(t, st, "web1", "worker")
	if worker.Restarts == nil || *worker.Restarts != 2 {
		t.Errorf("worker restarts: %v, want 2 (3 starts)", deref(worker.Restarts))
	}
	if worker.Drift != nil || worker.Health.Status != views.Healthy {
		t.Errorf("worker: drift %+v, health %+v", worker.Drift, worker.Health)
	}
	if worker.Wrapper == nil || worker.Wrapper.ChildPID != 77 || !worker.Wrapper.ChildSince.Equal(time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("worker wrapper: %+v", worker.Wrapper)
	}

	batch := findStatus(t, st, "web1", "batch")
	if batch.State != "stopped" || batch.Health.Status != views.Unhealthy || batch.Drift != nil {
		t.Errorf("a stopped manual service: state %s, health %+v, drift %+v", batch.State, batch.Health, batch.Drift)
	}
	legacy := findStatus(t, st, "web1", "legacy")
	if legacy.InConfiguration || legacy.Drift == nil || legacy.Drift.Action != "delete" {
		t.Errorf("a service the configuration no longer has: %+v", legacy)
	}

	if st.Hosts[1].Host != "web2" || !strings.Contains(st.Hosts[1].Error, "connection refused") {
		t.Errorf("web2: %+v", st.Hosts[1])
	}
	want := views.StatusSummary{Services: 4, Resources: 2, Running: 3, Unhealthy: 2, Drifted: 2, FailedHosts: 1}
	if st.Summary != want {
		t.Errorf("summary %+v, want %+v", st.Summary, want)
	}
	var names []string
	for _, s := range st.Hosts[0].Services {
		names = append(names, s.Service)
	}
	if strings.Join(names, ",") != "api,batch,legacy,worker" {
		t.Errorf("services in order %v, want sorted by name", names)
	}
	var others []string
	for _, s := range st.Hosts[0].Resources {
		others = append(others, s.Address+" "+s.State)
	}
	if strings.Join(others, ",") != "eventlog.api registered,eventlog.batch registered" {
		t.Errorf("other resources: %v", others)
	}

	// Neither form shows a value of the drifted secret, nor its hash.
	var human, js bytes.Buffer
	views.StatusTable(&human, st, false)
	views.StatusJSON(&js, st)
	for _, out := range []string{human.String(), js.String()} {
		if strings.Contains(out, statusSecret) || strings.Contains(out, protocol.HashEnv(map[string]string{"t": statusSecret})["t"]) {
			t.Errorf("the status shows the secret:\n%s", out)
		}
	}
	if !strings.Contains(human.String(), "env.TOKEN") {
		t.Errorf("the drifted attribute is not named:\n%s", human.String())
	}
}

// -target shows only the named services, and asks no other host.
func TestStatusTarget(t *testing.T) {
	cfg, arts, web1, dial := statusFixture(t)
	var dialed []string
	counting := func(ctx context.Context, h *config.Host) (statusConn, error) {
		dialed = append(dialed, h.Name)
		return dial(ctx, h)
	}
	hosts := hostsRunning(cfg, cfg.Hosts, []string{"worker"})
	st, err := makeStatus(context.Background(), cfg, arts, hosts, []string{"worker"}, counting, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dialed, ",") != "web1" {
		t.Errorf("dialed %v, want only web1", dialed)
	}
	if len(st.Hosts) != 1 || len(st.Hosts[0].Services) != 1 || st.Hosts[0].Services[0].Service != "worker" {
		t.Errorf("status: %+v", st.Hosts)
	}
	if len(web1.checks) != 1 || web1.checks[0].Service != "worker" {
		t.Errorf("health checks %+v, want worker's only", web1.checks)
	}
}

// An agent that cannot check health still gives a status: health
// unknown, and why; it is asked once, not once per service.
func TestStatusWithoutHealthOp(t *testing.T) {
	cfg, arts, web1, dial := statusFixture(t)
	web1.ops = []string{protocol.OpFacts}
	st, err := makeStatus(context.Background(), cfg, arts, cfg.Hosts[:1], nil, dial, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if web1.asked != 1 {
		t.Errorf("an agent without the health op was asked %d times, want once", web1.asked)
	}
	for _, name := range []string{"api", "worker", "legacy"} {
		if h := findStatus(t, st, "web1", name).Health; h.Status != views.Unknown || h.Detail != noHealthOpDetail {
			t.Errorf("%s health: %+v", name, h)
		}
	}
}

func TestStatusArgumentErrors(t *testing.T) {
	web := []string{"-var", "winrm_password=x", "../../examples/web.hcl"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "-bogus"}, "flag provided but not defined: -bogus"},
		{append([]string{"status", "-target", "hello"}, web...), "-target hello: write service.NAME"},
		{append([]string{"status", "-target", "service.nope"}, web...), "-target service.nope: no such service"},
		{append([]string{"status", "-host", "web9"}, web...), "-host web9: no such host"},
		{[]string{"status", "../../examples/web.hcl"}, "winrm_password"},
	} {
		r := gsdEnv(t, nil, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %+v, want exit 1 and %q", c.args, r, c.want)
		}
	}
	if r := gsd(t, "", "status", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-json") || !strings.Contains(r.stdout, "-parallelism") {
		t.Errorf("status -h: %+v", r)
	}
}

// An unreachable host is shown with its error, in both forms, and gsd
// exits 1.
func TestStatusUnreachableHost(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "gsd-agent.exe")
	os.WriteFile(agent, []byte("MZ stand-in: never sent, the host is not reached"), 0o644)
	os.WriteFile(filepath.Join(dir, "svc.exe"), []byte("MZ"), 0o644)
	os.WriteFile(filepath.Join(dir, "gsd.hcl"), []byte(`
host "gone" {
  address = "127.0.0.1"
  winrm {
    https             = false
    allow_unencrypted = true
    port              = 1
    user              = "deploy"
    password          = "x"
    timeout           = "5s"
  }
}
service "svc" {
  hosts  = ["gone"]
  binary = "svc.exe"
}
`), 0o644)
	env := map[string]string{"GSD_AGENT_EXE": agent}
	r := gsdEnv(t, env, "status", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "host.gone (127.0.0.1, winrm)") || !strings.Contains(r.stdout, "error:") ||
		!strings.Contains(r.stdout, "1 host could not be read") {
		t.Errorf("status with an unreachable host: %+v", r)
	}
	r = gsdEnv(t, env, "status", "-json", dir)
	var st views.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || st.FormatVersion != views.StatusFormatVersion || len(st.Hosts) != 1 || st.Hosts[0].Error == "" || st.Summary.FailedHosts != 1 {
		t.Errorf("status -json with an unreachable host: exit %d, %+v", r.code, st)
	}
}

func deref(n *int) any {
	if n == nil {
		return nil
	}
	return *n
}
