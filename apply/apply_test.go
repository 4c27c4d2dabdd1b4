package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// fleet is a set of fake agents, one per host dialed. Every operation is
// recorded in one log, in the order it happened across hosts, as
// "host: op name[@release][ effect]". Behaviour is set per host before
// Execute runs.
type fleet struct {
	mu    sync.Mutex
	log   []string
	conns map[string]*fakeConn

	// fail makes the first operation of a host that starts with the
	// given text fail ("activate db", "stage_release api").
	fail map[string]string
	// sick lists, per host, what fails its health check: "api" (whatever
	// runs) or "api@r-api-new" (only that release).
	sick map[string][]string
	// locked is how many lock attempts of a host find it held elsewhere.
	locked map[string]int
	// ids are the release ids stage_release answers, by "host/name";
	// by default "r-NAME-new".
	ids map[string]string
	// greet is what each agent says when dialed (Dialer's report).
	greet string
}

func newFleet() *fleet {
	return &fleet{conns: map[string]*fakeConn{}, fail: map[string]string{}, sick: map[string][]string{},
		locked: map[string]int{}, ids: map[string]string{}}
}

func (f *fleet) dial(_ context.Context, host string, report func(string)) (Conn, error) {
	c := &fakeConn{f: f, host: host, active: map[string]string{}}
	f.mu.Lock()
	f.conns[host] = c
	f.mu.Unlock()
	if f.greet != "" {
		report(f.greet)
	}
	return c, nil
}

// ops is what happened on one host, in order.
func (f *fleet) ops(host string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.log {
		if op, ok := strings.CutPrefix(l, host+": "); ok {
			out = append(out, op)
		}
	}
	return out
}

func (f *fleet) joined(host string) string { return strings.Join(f.ops(host), ",") }

// first and last are the positions in the whole log of the first and the
// last entry that starts with prefix ("web1: activate db"); -1 if none.
func (f *fleet) first(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.IndexFunc(f.log, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

func (f *fleet) last(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.log) - 1; i >= 0; i-- {
		if strings.HasPrefix(f.log[i], prefix) {
			return i
		}
	}
	return -1
}

// entries returns the log entries whose op (after "host: ") starts with op.
func (f *fleet) entries(op string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.log {
		if _, rest, _ := strings.Cut(l, ": "); strings.HasPrefix(rest, op) {
			out = append(out, l)
		}
	}
	return out
}

// touched says whether anything was activated or deleted on host.
func (f *fleet) touched(host string) bool {
	for _, op := range f.ops(host) {
		if strings.HasPrefix(op, protocol.OpActivate) || strings.HasPrefix(op, protocol.OpDeleteService) {
			return true
		}
	}
	return false
}

func (f *fleet) conn(t *testing.T, host string) *fakeConn {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.conns[host]
	if c == nil {
		t.Fatalf("%s was never dialed", host)
	}
	return c
}

// fakeConn is one host's fake agent.
type fakeConn struct {
	f    *fleet
	host string
	// calls are the arguments of every call, in order (under f.mu).
	calls []call
	// active is the release each service runs, as activations set it.
	active map[string]string
}

type call struct {
	op   string
	args any
}

// args returns the arguments of every call of op, in order.
func args[T any](t *testing.T, c *fakeConn, op string) []T {
	t.Helper()
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	var out []T
	for _, cl := range c.calls {
		if cl.op != op {
			continue
		}
		a, ok := cl.args.(T)
		if !ok {
			t.Fatalf("%s: %s called with %T", c.host, op, cl.args)
		}
		out = append(out, a)
	}
	return out
}

func (c *fakeConn) record(what string) {
	c.f.log = append(c.f.log, c.host+": "+what)
}

var errAgent = errors.New("the agent said no")

func (c *fakeConn) Call(_ context.Context, op string, args, result any) error {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	c.calls = append(c.calls, call{op, args})
	what := op
	switch a := args.(type) {
	case protocol.StageReleaseArgs:
		what += " " + a.Name
	case protocol.ActivateArgs:
		what += " " + a.Name + "@" + a.Release + " " + a.Effect
	case protocol.HealthArgs:
		what += " " + a.Service
	case protocol.ServiceRef:
		what += " " + a.Service
		if a.Purge {
			what += " purge"
		}
	}
	c.record(what)
	if op == protocol.OpLock && f.locked[c.host] > 0 {
		f.locked[c.host]--
		return &client.Error{Op: op, Detail: protocol.Error{Code: protocol.CodeLocked, Message: "held",
			Holder: &protocol.LockHolder{User: "SYSTEM", Operator: "alice@laptop", Machine: "WEB1", PID: 4711, Since: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}}
	}
	if p := f.fail[c.host]; p != "" && strings.HasPrefix(what, p) {
		delete(f.fail, c.host)
		return errAgent
	}
	switch a := args.(type) {
	case protocol.StageReleaseArgs:
		id := f.ids[c.host+"/"+a.Name]
		if id == "" {
			id = "r-" + a.Name + "-new"
		}
		*result.(*protocol.StageReleaseResult) = protocol.StageReleaseResult{ID: id}
	case protocol.ActivateArgs:
		c.active[a.Name] = a.Release
	case protocol.HealthArgs:
		res := protocol.HealthResult{Healthy: true, Kind: a.Check.Kind(), Probes: 3, Last: "HTTP 200", ElapsedMS: 300}
		for _, s := range f.sick[c.host] {
			if s == a.Service || s == a.Service+"@"+c.active[a.Service] {
				res = protocol.HealthResult{Kind: a.Check.Kind(), Probes: 5, Last: "HTTP 503", ElapsedMS: 1500,
					Output: []string{"panic: version 2 is broken"}}
			}
		}
		*result.(*protocol.HealthResult) = res
	}
	return nil
}

func (c *fakeConn) Stage(_ context.Context, sha string, size int64, name string, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if int64(len(b)) != size || protocol.SHA256Hex(b) != sha {
		return fmt.Errorf("got %d bytes with SHA-256 %s, want %d bytes with %s", len(b), protocol.SHA256Hex(b), size, sha)
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.record("upload " + name)
	return nil
}

func (c *fakeConn) Close() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.record("close")
	return nil
}

// recorder is a Hooks that writes each call as a line. It takes no lock
// of its own: the engine promises to serialise hook calls, which the race
// detector checks.
type recorder struct {
	NilHooks
	events []string
	// progress is the last upload progress per host and file, as
	// "sent/size".
	progress map[string]string
	// on, if set, sees each event as it is recorded.
	on func(event string)
}

func (r *recorder) add(format string, a ...any) {
	e := fmt.Sprintf(format, a...)
	r.events = append(r.events, e)
	if r.on != nil {
		r.on(e)
	}
}

func errOr(err error) string {
	if err == nil {
		return "ok"
	}
	return "error"
}

func (r *recorder) HostStart(h string)                { r.add("hoststart %s", h) }
func (r *recorder) Uploading(h string, u plan.Upload) { r.add("uploading %s %s", h, u.Name) }
func (r *recorder) Uploaded(h string, u plan.Upload)  { r.add("uploaded %s %s", h, u.Name) }
func (r *recorder) UploadProgress(h string, u plan.Upload, sent int64) {
	if r.progress == nil {
		r.progress = map[string]string{}
	}
	r.progress[h+" "+u.Name] = fmt.Sprintf("%d/%d", sent, u.Size)
}
func (r *recorder) Staged(h string, s *plan.Step, id string) {
	r.add("staged %s %s %s", h, s.Address, id)
}
func (r *recorder) Message(h, m string) { r.add("message %s %s", h, m) }
func (r *recorder) Batch(ro *plan.Rollout, n int, hosts []string) {
	r.add("batch %s %d %v", ro.Address, n, hosts)
}
func (r *recorder) StepStart(h string, s *plan.Step) { r.add("start %s %s", h, s.Address) }
func (r *recorder) StepDone(h string, s *plan.Step)  { r.add("done %s %s", h, s.Address) }
func (r *recorder) StepFailed(h string, s *plan.Step, err error) {
	r.add("failed %s %s %v", h, s.Address, err)
}
func (r *recorder) Healthy(h string, s *plan.Step, _ *protocol.HealthResult) {
	r.add("healthy %s %s", h, s.Address)
}
func (r *recorder) Unhealthy(h string, s *plan.Step, _ *protocol.HealthResult, _ error) {
	r.add("unhealthy %s %s", h, s.Address)
}
func (r *recorder) RollingBack(h string, s *plan.Step) { r.add("rollingback %s %s", h, s.Address) }
func (r *recorder) RolledBack(h string, s *plan.Step, err error) {
	r.add("rolledback %s %s %s", h, s.Address, errOr(err))
}
func (r *recorder) Paused(ro *plan.Rollout, hosts []string) { r.add("paused %s %v", ro.Address, hosts) }
func (r *recorder) HostDone(h string, err error)            { r.add("hostdone %s %s", h, errOr(err)) }

// Plans are built by hand, so that these tests depend on the plan's types
// only, not on how plan.Make decides.

func newPlan() *plan.Plan {
	return &plan.Plan{FormatVersion: plan.FormatVersion, Artifacts: map[string]plan.ArtifactFile{}}
}

// addArtifact writes a binary to a file the plan names and returns its
// upload.
func addArtifact(t *testing.T, p *plan.Plan, content string, forSvc ...string) plan.Upload {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.exe")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sha := protocol.SHA256Hex([]byte(content))
	p.Artifacts[sha] = plan.ArtifactFile{Path: path, Size: int64(len(content))}
	return plan.Upload{SHA256: sha, Size: int64(len(content)), Name: "app.exe", For: forSvc}
}

// specOf is the release a step stages: a blind ServiceSpec.
func specOf(name string, stopTimeoutMS int64) json.RawMessage {
	b, err := json.Marshal(protocol.ServiceSpec{Name: name, Artifact: strings.Repeat("a", 64), Version: "2.0", StopTimeout: stopTimeoutMS})
	if err != nil {
		panic(err)
	}
	return b
}

// svcStep is a step of service name that stages its spec and activates it
// with effect; from is the release the host runs now ("" for none).
func svcStep(name string, action plan.Action, effect, from string) *plan.Step {
	s := &plan.Step{Address: "service." + name, Kind: protocol.KindService, Service: name, Action: action, Effect: effect, From: from}
	if action != plan.ActionDelete && action != plan.ActionNoOp {
		s.Spec = specOf(name, 0)
	}
	return s
}

func deleteStep(name, from string) *plan.Step {
	return svcStep(name, plan.ActionDelete, protocol.EffectStop, from)
}

func addHost(p *plan.Plan, host string, uploads []plan.Upload, steps ...*plan.Step) {
	p.Hosts = append(p.Hosts, &plan.HostPlan{Host: host, Address: host + ".example.internal", Transport: "winrm", Uploads: uploads, Steps: steps})
}

func gatedRollout(name string, batches ...[]string) *plan.Rollout {
	return &plan.Rollout{Address: "service." + name, Service: name, Batches: batches, Gated: true}
}

// removal is the rollout of a service being removed: every host at once,
// no gate.
func removal(name string, hosts ...string) *plan.Rollout {
	return &plan.Rollout{Address: "service." + name, Service: name, Batches: [][]string{hosts}}
}

// depsPlan puts, on web1 and web2, db and api (which depends on db) as new
// services and removes legacy. web2 lists its steps in another order: what
// decides the order of activation is the plan's rollouts.
func depsPlan(t *testing.T) *plan.Plan {
	p := newPlan()
	up := addArtifact(t, p, "MZ-binary", "db", "api")
	for _, h := range []string{"web1", "web2"} {
		steps := []*plan.Step{
			svcStep("db", plan.ActionCreate, protocol.EffectStart, ""),
			svcStep("api", plan.ActionCreate, protocol.EffectStart, ""),
			deleteStep("legacy", "r-legacy-1"),
		}
		if h == "web2" {
			slices.Reverse(steps)
		}
		addHost(p, h, []plan.Upload{up}, steps...)
	}
	p.Rollouts = []*plan.Rollout{
		gatedRollout("db", []string{"web1"}, []string{"web2"}),
		gatedRollout("api", []string{"web1", "web2"}),
		removal("legacy", "web1", "web2"),
	}
	return p
}

func mustSucceed(t *testing.T, out Outcome) {
	t.Helper()
	if out.Failed() {
		t.Fatalf("the run failed: %+v", out)
	}
}

// Uploads and every release are on every host before anything is
// activated anywhere; then rollouts run in the plan's order (a dependency
// on all its hosts before its dependent), removals last.
func TestPrepareEverywhereThenRolloutsInPlanOrder(t *testing.T) {
	p := depsPlan(t)
	f := newFleet()
	out := Execute(context.Background(), p, f.dial, Options{Parallelism: 2, Operator: "ci"})
	mustSucceed(t, out)
	if len(out.Results) != 2 {
		t.Fatalf("results %+v", out.Results)
	}
	for _, r := range out.Results {
		if r.Err != nil || r.Completed != 3 || r.Uploaded != int64(len("MZ-binary")) {
			t.Errorf("result %+v", r)
		}
	}
	want := map[string][]string{
		"web1": {"lock", "upload app.exe", "stage_release db", "stage_release api",
			"activate db@r-db-new start", "health db",
			"activate api@r-api-new start", "health api",
			"delete_service legacy purge", "unlock", "close"},
		// web2 staged in its own step order, but activates in the rollouts'.
		"web2": {"lock", "upload app.exe", "stage_release api", "stage_release db",
			"activate db@r-db-new start", "health db",
			"activate api@r-api-new start", "health api",
			"delete_service legacy purge", "unlock", "close"},
	}
	for h, w := range want {
		if got := f.ops(h); !slices.Equal(got, w) {
			t.Errorf("%s operations:\n%s\nwant:\n%s", h, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
	firstActivate := slices.MinFunc([]int{f.first("web1: activate"), f.first("web2: activate")}, cmpInt)
	for _, h := range []string{"web1", "web2"} {
		for _, prep := range []string{"upload", "stage_release"} {
			if l := f.last(h + ": " + prep); l < 0 || l > firstActivate {
				t.Errorf("%s: %s at %d, after the first activation (%d): %v", h, prep, l, firstActivate, f.log)
			}
		}
	}
	// db's rollout goes batch by batch over both hosts before api starts.
	if !(f.first("web1: activate db") < f.first("web2: activate db") &&
		f.first("web2: health db") < f.first("web1: activate api") &&
		f.first("web2: health db") < f.first("web2: activate api")) {
		t.Errorf("db is not rolled out everywhere before api:\n%s", strings.Join(f.log, "\n"))
	}
	if f.first("web1: delete_service") < f.last("web2: health api") || f.first("web2: delete_service") < f.last("web1: health api") {
		t.Errorf("a removal ran before the last rollout was done:\n%s", strings.Join(f.log, "\n"))
	}
	for _, h := range []string{"web1", "web2"} {
		if locks := args[protocol.LockArgs](t, f.conn(t, h), protocol.OpLock); len(locks) != 1 || locks[0].Operator != "ci" {
			t.Errorf("%s lock %+v", h, locks)
		}
	}
	if len(out.Rollouts) != 3 {
		t.Fatalf("rollouts %+v", out.Rollouts)
	}
	for i, w := range []struct {
		addr    string
		batches int
	}{{"service.db", 2}, {"service.api", 1}, {"service.legacy", 1}} {
		r := out.Rollouts[i]
		if r.Address != w.addr || r.Batches != w.batches || r.BatchesDone != w.batches || r.Stopped || len(r.Untouched) != 0 {
			t.Errorf("rollout %d: %+v", i, r)
		}
	}
}

func cmpInt(a, b int) int { return a - b }

// Each step's Effect reaches activate unchanged; only a process the step
// touches, in a gated rollout, is health-checked (with DefaultHealth when
// the rollout names no check); a removal purges.
func TestEffectsReachActivate(t *testing.T) {
	p := newPlan()
	db := svcStep("db", plan.ActionUpdate, protocol.EffectRestart, "r-db-old")
	db.Spec = specOf("db", 5000)
	addHost(p, "web1", nil,
		svcStep("idle", plan.ActionNoOp, "", "r-idle-1"),
		db,
		svcStep("api", plan.ActionUpdate, protocol.EffectReload, "r-api-old"),
		svcStep("worker", plan.ActionUpdate, protocol.EffectStart, "r-worker-old"),
		svcStep("cache", plan.ActionUpdate, protocol.EffectNone, "r-cache-old"),
		svcStep("tool", plan.ActionUpdate, protocol.EffectRestart, "r-tool-old"),
		deleteStep("legacy", "r-legacy-1"),
	)
	ungated := gatedRollout("tool", []string{"web1"})
	ungated.Gated = false
	p.Rollouts = []*plan.Rollout{
		gatedRollout("db", []string{"web1"}),
		gatedRollout("api", []string{"web1"}),
		gatedRollout("worker", []string{"web1"}),
		gatedRollout("cache", []string{"web1"}),
		ungated,
		removal("legacy", "web1"),
	}
	f := newFleet()
	out := Execute(context.Background(), p, f.dial, Options{})
	mustSucceed(t, out)
	if r := out.Results[0]; r.Completed != 6 || r.Uploaded != 0 {
		t.Errorf("result %+v", r)
	}
	want := []string{"lock",
		"stage_release db", "stage_release api", "stage_release worker", "stage_release cache", "stage_release tool",
		"activate db@r-db-new restart", "health db",
		"activate api@r-api-new reload", "health api",
		"activate worker@r-worker-new start", "health worker",
		"activate cache@r-cache-new none",  // settings the SCM applies at once: no gate
		"activate tool@r-tool-new restart", // an ungated rollout: no gate
		"delete_service legacy purge",
		"unlock", "close"}
	if got := f.ops("web1"); !slices.Equal(got, want) {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c := f.conn(t, "web1")
	acts := args[protocol.ActivateArgs](t, c, protocol.OpActivate)
	if len(acts) != 5 {
		t.Fatalf("activations %+v", acts)
	}
	for _, a := range acts {
		if a.Kind != protocol.KindService || a.OnInterrupt != protocol.OnFailureRollback {
			t.Errorf("activation %+v", a)
		}
	}
	// The activation is bounded by the release's stop timeout (at least a
	// second) and some slack for the start.
	if acts[0].TimeoutMS != 5000+activateSlack || acts[1].TimeoutMS != 1000+activateSlack {
		t.Errorf("activation bounds %d, %d", acts[0].TimeoutMS, acts[1].TimeoutMS)
	}
	for _, h := range args[protocol.HealthArgs](t, c, protocol.OpHealth) {
		if h.Check != DefaultHealth {
			t.Errorf("health check %+v, want the default %+v", h.Check, DefaultHealth)
		}
	}
	dels := args[protocol.ServiceRef](t, c, protocol.OpDeleteService)
	if len(dels) != 1 || dels[0] != (protocol.ServiceRef{Service: "legacy", Purge: true}) {
		t.Errorf("delete %+v", dels)
	}
}

// A step that names a release the host holds (gsd rollback) stages
// nothing and activates that release.
func TestReleaseOnTheHostIsNotStaged(t *testing.T) {
	p := newPlan()
	s := svcStep("api", plan.ActionUpdate, protocol.EffectRestart, "r-api-new")
	s.Spec, s.Release = nil, "r-api-old"
	addHost(p, "web1", nil, s)
	p.Rollouts = []*plan.Rollout{gatedRollout("api", []string{"web1"})}
	f := newFleet()
	rec := &recorder{}
	out := Execute(context.Background(), p, f.dial, Options{Hooks: rec})
	mustSucceed(t, out)
	if got := f.joined("web1"); got != "lock,activate api@r-api-old restart,health api,unlock,close" {
		t.Errorf("operations %s", got)
	}
	if slices.ContainsFunc(rec.events, func(e string) bool { return strings.HasPrefix(e, "staged ") }) {
		t.Errorf("a release the host keeps was reported as staged: %v", rec.events)
	}
}

// The secret values opts.Secrets resolves for a step reach stage_release
// as they are, for that step's keys and host; a step without secrets asks
// for none.
func TestSecretsReachStageRelease(t *testing.T) {
	p := newPlan()
	keys := []string{protocol.SecretPassword, protocol.SecretEnv("TOKEN")}
	for _, h := range []string{"web1", "web2"} {
		api := svcStep("api", plan.ActionCreate, protocol.EffectStart, "")
		api.Secrets = keys
		addHost(p, h, nil, svcStep("db", plan.ActionCreate, protocol.EffectStart, ""), api)
	}
	p.Rollouts = []*plan.Rollout{gatedRollout("db", []string{"web1", "web2"}), gatedRollout("api", []string{"web1", "web2"})}
	var mu sync.Mutex
	var asked []string
	secrets := func(host string, s *plan.Step) (map[string]string, error) {
		mu.Lock()
		asked = append(asked, host+" "+s.Address)
		mu.Unlock()
		out := map[string]string{}
		for _, k := range s.Secrets {
			out[k] = k + " of " + host
		}
		return out, nil
	}
	f := newFleet()
	out := Execute(context.Background(), p, f.dial, Options{Parallelism: 2, Secrets: secrets})
	mustSucceed(t, out)
	slices.Sort(asked)
	if !slices.Equal(asked, []string{"web1 service.api", "web2 service.api"}) {
		t.Errorf("secrets asked for %v", asked)
	}
	for i, h := range []string{"web1", "web2"} {
		st := args[protocol.StageReleaseArgs](t, f.conn(t, h), protocol.OpStageRelease)
		if len(st) != 2 {
			t.Fatalf("%s stage_release %+v", h, st)
		}
		if st[0].Name != "db" || st[0].Secrets != nil {
			t.Errorf("%s: db staged with %+v", h, st[0])
		}
		want := map[string]string{
			protocol.SecretPassword:     protocol.SecretPassword + " of " + h,
			protocol.SecretEnv("TOKEN"): protocol.SecretEnv("TOKEN") + " of " + h,
		}
		api := p.Hosts[i].Steps[1]
		if st[1].Kind != protocol.KindService || st[1].Name != "api" || !bytes.Equal(st[1].Spec, api.Spec) || !reflect.DeepEqual(st[1].Secrets, want) {
			t.Errorf("%s: api staged with %+v, want secrets %v", h, st[1], want)
		}
	}
}

// A release that needs secrets fails its host at staging when none can be
// had: nothing is activated there, and the rollout counts the failure.
func TestSecretsMissing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets Secrets
		want    string
	}{
		{"no resolver", nil, "host web1: service.api: staging the release: the release needs secret values and none were given"},
		{"resolver fails", func(string, *plan.Step) (map[string]string, error) {
			return nil, errors.New(`variable "token" is not set`)
		}, `host web1: service.api: staging the release: variable "token" is not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlan()
			api := svcStep("api", plan.ActionReplace, protocol.EffectRestart, "r-api-old")
			api.Secrets = []string{protocol.SecretPassword}
			addHost(p, "web1", nil, svcStep("db", plan.ActionUpdate, protocol.EffectRestart, "r-db-old"), api)
			p.Rollouts = []*plan.Rollout{gatedRollout("db", []string{"web1"}), gatedRollout("api", []string{"web1"})}
			f := newFleet()
			out := Execute(context.Background(), p, f.dial, Options{Secrets: tc.secrets})
			r := out.Results[0]
			if r.Err == nil || r.Err.Error() != tc.want || r.Completed != 0 {
				t.Errorf("result %+v, want error %q", r, tc.want)
			}
			if got := f.joined("web1"); got != "lock,stage_release db,unlock,close" {
				t.Errorf("operations %s", got)
			}
			if !out.Failed() || !out.Rollouts[0].Stopped || len(out.Rollouts[0].Failures) != 1 || out.Rollouts[0].Failures[0].Err != tc.want {
				t.Errorf("rollouts %+v", out.Rollouts)
			}
		})
	}
}

// A host that fails stops its service's rollout there: the host before it
// keeps its change, the failed new service is stopped again
// (auto_rollback), and the later service is left alone on every host.
func TestFailureStopsTheRollout(t *testing.T) {
	p := depsPlan(t)
	p.Rollouts[0].AutoRollback = true
	f := newFleet()
	f.fail["web2"] = "activate db"
	out := Execute(context.Background(), p, f.dial, Options{Parallelism: 2})
	res := out.Results
	if len(res) != 2 || res[0].Host != "web1" || res[0].Completed != 1 || res[0].Err == nil ||
		res[0].Err.Error() != "host web1: service.api not changed: the rollout of service.db stopped after a failure" {
		t.Fatalf("web1: %+v", res[0])
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "host web2: service.db: the agent said no") || res[1].Completed != 0 {
		t.Errorf("web2: %+v", res[1])
	}
	if !out.Failed() || len(out.Rollouts) != 3 || !out.Rollouts[0].Stopped || out.Rollouts[1].Stopped || out.Rollouts[0].BatchesDone != 2 {
		t.Fatalf("rollouts %+v", out.Rollouts)
	}
	fail := out.Rollouts[0].Failures
	if len(fail) != 1 || fail[0].Host != "web2" || fail[0].Phase != "change" || !strings.HasPrefix(fail[0].Rollback, "stopped") {
		t.Errorf("failures %+v", fail)
	}
	for _, r := range out.Rollouts[1:] {
		if got := strings.Join(r.Untouched, ","); got != "web1,web2" {
			t.Errorf("untouched by the %s rollout: %s", r.Address, got)
		}
	}
	if got, want := f.joined("web1"), "lock,upload app.exe,stage_release db,stage_release api,activate db@r-db-new start,health db,unlock,close"; got != want {
		t.Errorf("web1 operations\n%s\nwant\n%s", got, want)
	}
	// The new service that failed is activated again, stopped.
	if got, want := f.joined("web2"), "lock,upload app.exe,stage_release api,stage_release db,activate db@r-db-new start,activate db@r-db-new stop,unlock,close"; got != want {
		t.Errorf("web2 operations\n%s\nwant\n%s", got, want)
	}
}

// A graceful stop lets the step in flight finish and starts no other.
func TestGracefulStopBetweenSteps(t *testing.T) {
	p := depsPlan(t)
	p.Hosts, p.Rollouts[0].Batches = p.Hosts[:1], [][]string{{"web1"}}
	p.Rollouts[1].Batches, p.Rollouts[2].Batches = [][]string{{"web1"}}, [][]string{{"web1"}}
	stop := make(chan struct{})
	rec := &recorder{on: func(e string) {
		if e == "done web1 service.db" {
			close(stop) // Ctrl-C while db's step runs
		}
	}}
	f := newFleet()
	out := Execute(context.Background(), p, f.dial, Options{Stop: stop, Hooks: rec})
	r := out.Results[0]
	if !errors.Is(r.Err, ErrStopped) || r.Completed != 1 || !strings.Contains(r.Err.Error(), "service.api not changed") {
		t.Fatalf("result %+v", r)
	}
	if got, want := f.joined("web1"), "lock,upload app.exe,stage_release db,stage_release api,activate db@r-db-new start,health db,unlock,close"; got != want {
		t.Errorf("operations\n%s\nwant\n%s", got, want)
	}
	if !out.Failed() || out.Rollouts[0].Stopped || out.Rollouts[0].BatchesDone != 1 || strings.Join(out.Rollouts[1].Untouched, ",") != "web1" {
		t.Errorf("rollouts %+v", out.Rollouts)
	}
}

// A host another apply holds fails at once, naming the holder, and
// nothing happens on it.
func TestLockHeldElsewhereFailsFast(t *testing.T) {
	p := depsPlan(t)
	f := newFleet()
	f.locked["web1"] = 100
	start := time.Now()
	out := Execute(context.Background(), p, f.dial, Options{Parallelism: 2})
	if d := time.Since(start); d > lockRetry/2 {
		t.Errorf("took %s: it waited for the lock", d)
	}
	r := out.Results[0]
	if r.Err == nil || !strings.Contains(r.Err.Error(), "host web1: locked by alice@laptop (agent pid 4711 on WEB1, since 2026-11-25T12:00:00Z)") {
		t.Errorf("result %+v", r)
	}
	if got := f.joined("web1"); got != "lock,close" {
		t.Errorf("nothing may happen without the lock: %s", got)
	}
	if f.touched("web2") {
		t.Errorf("web2 was changed while web1 failed the rollout's first batch: %s", f.joined("web2"))
	}
}

// With -lock-timeout the apply waits for the holder to finish.
func TestLockTimeoutWaits(t *testing.T) {
	lockRetry = time.Millisecond
	defer func() { lockRetry = time.Second }()
	p := depsPlan(t)
	f := newFleet()
	f.locked["web1"] = 3
	out := Execute(context.Background(), p, f.dial, Options{LockTimeout: time.Hour})
	mustSucceed(t, out)
	if r := out.Results[0]; r.Err != nil || r.Completed != 3 {
		t.Fatalf("result %+v", r)
	}
	if ops := f.ops("web1"); len(ops) < 5 || strings.Join(ops[:5], ",") != "lock,lock,lock,lock,upload app.exe" {
		t.Errorf("operations %v", ops)
	}

	// A lock still held after the timeout fails, saying it waited.
	f = newFleet()
	f.locked["web1"] = 1000
	out = Execute(context.Background(), p, f.dial, Options{LockTimeout: 20 * time.Millisecond})
	if r := out.Results[0]; r.Err == nil || !strings.Contains(r.Err.Error(), "still held after waiting 20ms") {
		t.Errorf("result %+v", r)
	}
	if f.touched("web1") {
		t.Errorf("web1 changed without its lock: %s", f.joined("web1"))
	}
}

// A stop requested before a host starts uploading sends nothing; one
// after the uploads stages nothing. Either way the lock is given back.
func TestStopBeforeUploads(t *testing.T) {
	for _, tc := range []struct{ at, want, err string }{
		{"hoststart web1", "lock,unlock,close", "stopped before uploading app.exe"},
		{"uploaded web1 app.exe", "lock,upload app.exe,unlock,close", "stopped before staging service.db"},
	} {
		t.Run(tc.at, func(t *testing.T) {
			p := depsPlan(t)
			p.Hosts = p.Hosts[:1]
			stop := make(chan struct{})
			rec := &recorder{on: func(e string) {
				if e == tc.at {
					close(stop)
				}
			}}
			f := newFleet()
			out := Execute(context.Background(), p, f.dial, Options{Stop: stop, Hooks: rec})
			r := out.Results[0]
			if !errors.Is(r.Err, ErrStopped) || !strings.Contains(r.Err.Error(), tc.err) {
				t.Fatalf("result %+v", r)
			}
			if got := f.joined("web1"); got != tc.want {
				t.Errorf("operations %s, want %s", got, tc.want)
			}
		})
	}
}

// Hooks see each release staged before any step starts, and every host
// start and end once; what the agent says reaches Message.
func TestHooks(t *testing.T) {
	p := depsPlan(t)
	f := newFleet()
	f.greet = "agent 1.4 here"
	rec := &recorder{}
	mustSucceed(t, Execute(context.Background(), p, f.dial, Options{Parallelism: 2, Hooks: rec}))
	ev := rec.events
	index := func(e string) int {
		i := slices.Index(ev, e)
		if i < 0 {
			t.Errorf("no event %q in %v", e, ev)
		}
		return i
	}
	lastStaged, firstStart := -1, len(ev)
	for i, e := range ev {
		if strings.HasPrefix(e, "staged ") {
			lastStaged = i
		}
		if strings.HasPrefix(e, "start ") && i < firstStart {
			firstStart = i
		}
	}
	if lastStaged < 0 || lastStaged > firstStart {
		t.Errorf("a release was staged after a step started: %v", ev)
	}
	for _, h := range []string{"web1", "web2"} {
		if !(index("hoststart "+h) < index("message "+h+" agent 1.4 here") &&
			index("message "+h+" agent 1.4 here") < index("uploading "+h+" app.exe") &&
			index("uploading "+h+" app.exe") < index("uploaded "+h+" app.exe") &&
			index("uploaded "+h+" app.exe") < index("staged "+h+" service.db r-db-new") &&
			index("staged "+h+" service.api r-api-new") < index("start "+h+" service.db") &&
			index("start "+h+" service.db") < index("done "+h+" service.db") &&
			index("done "+h+" service.db") < index("healthy "+h+" service.db") &&
			index("start "+h+" service.legacy") < index("done "+h+" service.legacy")) {
			t.Errorf("%s: events out of order: %v", h, ev)
		}
		done := 0
		for i, e := range ev {
			if strings.HasPrefix(e, "hostdone "+h) {
				done++
				if e != "hostdone "+h+" ok" || i < index("done "+h+" service.legacy") {
					t.Errorf("%s: %q at %d: %v", h, e, i, ev)
				}
			}
		}
		if done != 1 {
			t.Errorf("%s: HostDone %d times: %v", h, done, ev)
		}
		// Upload progress reaches the whole artifact.
		if p := rec.progress[h+" app.exe"]; p == "" || !strings.HasPrefix(p, strings.Split(p, "/")[1]+"/") || p == "0/0" {
			t.Errorf("%s: last upload progress %q, want size/size", h, p)
		}
	}
	// A host that fails is done too, with its error.
	f = newFleet()
	f.fail["web2"] = "stage_release"
	rec = &recorder{}
	Execute(context.Background(), p, f.dial, Options{Parallelism: 2, Hooks: rec})
	if !slices.Contains(rec.events, "hostdone web1 error") || !slices.Contains(rec.events, "hostdone web2 error") {
		t.Errorf("events %v", rec.events)
	}
	if f.touched("web2") {
		t.Errorf("web2 changed though staging failed: %s", f.joined("web2"))
	}
}
