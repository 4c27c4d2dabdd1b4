package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// Result is the outcome on one host.
type Result struct {
	Host      string
	Err       error
	Completed int   // steps done
	Uploaded  int64 // bytes of artifacts sent
}

// Outcome is what a run did: per host, and per service rollout.
type Outcome struct {
	Results  []Result
	Rollouts []RolloutReport
	// Paused: a canary batch passed and its rollout waits for
	// gsd apply -continue; nothing failed.
	Paused bool
}

// Failed reports whether any host or rollout failed.
func (o Outcome) Failed() bool {
	for _, r := range o.Results {
		if r.Err != nil {
			return true
		}
	}
	for _, r := range o.Rollouts {
		if r.Stopped {
			return true
		}
	}
	return false
}

// RolloutReport is how one resource's rollout went.
type RolloutReport struct {
	Address     string
	Service     string
	Batches     int // planned
	BatchesDone int
	// Stopped: too many hosts failed and the rollout ended there.
	Stopped bool
	Paused  bool
	// Failures are the hosts that failed, in batch order.
	Failures []HostFailure
	// Untouched are hosts of the rollout that were never changed.
	Untouched []string
	// AlsoRolledBack are healthy hosts switched back with the failing
	// ones (rollback_scope), each with what was done: "web1: switched
	// back to 1.2.3 and healthy".
	AlsoRolledBack []string
}

// HostFailure is one host that failed its change or its health gate, and
// what was done about it.
type HostFailure struct {
	Host string
	// Phase is "change" (an agent operation failed) or "health".
	Phase  string
	Err    string
	Health *protocol.HealthResult
	// Rollback says what happened after: "" (not attempted), or a
	// sentence such as "switched back to 1.2.3 and healthy".
	Rollback string
	// RolledBackHealthy: after the rollback, the host passed its check.
	RolledBackHealthy bool
}

// Execute carries out p. First, on every host with work (at most
// opts.Parallelism at a time), it connects, takes the lock, uploads what
// the host lacks and stages every release the host's steps activate, so
// nothing stops while bytes are still on the wire. Then it goes through
// the plan's rollouts in order, one resource at a time and batch by batch:
// every host of a batch is switched to its new release (one journaled
// agent call) and health-gated before the next batch starts. When more
// hosts fail than the rollout allows, it stops there: with auto_rollback
// the failing batch (or, with rollback_scope "all", every host it
// changed) is switched back to the release it ran before, whole, and
// checked again; later batches and resources are left untouched, and the
// failure is reported.
func Execute(ctx context.Context, p *plan.Plan, dial Dialer, opts Options) Outcome {
	if opts.Hooks == nil {
		opts.Hooks = NilHooks{}
	}
	if opts.Kinds == nil {
		opts.Kinds = DefaultKinds()
	}
	r := &runner{ctx: ctx, plan: p, opts: opts, hooks: &serialHooks{h: opts.Hooks}, conns: map[string]Conn{}, results: map[string]*Result{},
		steps: map[string]map[string]*plan.Step{}, staged: map[string]map[string]string{}}
	var work []*plan.HostPlan
	for _, hp := range p.Hosts {
		if hp.Error != "" || !hasWork(hp) {
			continue
		}
		work = append(work, hp)
		r.results[hp.Host] = &Result{Host: hp.Host}
		r.steps[hp.Host] = map[string]*plan.Step{}
		r.staged[hp.Host] = map[string]string{}
		for _, s := range hp.Steps {
			r.steps[hp.Host][s.Address] = s
		}
	}
	defer r.release()

	r.parallel(len(work), func(i int) {
		hp := work[i]
		res := r.results[hp.Host]
		if stopped(opts.Stop) {
			res.Err = fmt.Errorf("host %s: not started: %w", hp.Host, ErrStopped)
			return
		}
		r.hooks.HostStart(hp.Host)
		conn, err := r.prepare(hp, dial, res)
		if err != nil {
			res.Err = err
			return
		}
		r.mu.Lock()
		r.conns[hp.Host] = conn
		r.mu.Unlock()
	})

	out := Outcome{}
	var halted bool
	var why error // why the run halted, for the hosts it left alone
	for _, ro := range p.Rollouts {
		rep := RolloutReport{Address: ro.Address, Service: ro.Service, Batches: len(ro.Batches)}
		if halted {
			rep.Untouched = ro.Hosts()
		} else {
			halted = r.rollout(ro, &rep)
			out.Paused = out.Paused || rep.Paused
			switch {
			case rep.Stopped:
				why = fmt.Errorf("the rollout of %s stopped after a failure", ro.Address)
			case halted && !rep.Paused:
				why = ErrStopped
			}
		}
		if why != nil {
			for _, h := range rep.Untouched {
				if res := r.results[h]; res != nil && res.Err == nil {
					res.Err = fmt.Errorf("host %s: %s not changed: %w", h, ro.Address, why)
				}
			}
		}
		out.Rollouts = append(out.Rollouts, rep)
	}

	for _, hp := range work {
		res := r.results[hp.Host]
		r.hooks.HostDone(hp.Host, res.Err)
		out.Results = append(out.Results, *res)
	}
	sort.Slice(out.Results, func(i, j int) bool { return out.Results[i].Host < out.Results[j].Host })
	return out
}

type runner struct {
	ctx     context.Context
	plan    *plan.Plan
	opts    Options
	hooks   Hooks
	mu      sync.Mutex
	conns   map[string]Conn
	results map[string]*Result
	steps   map[string]map[string]*plan.Step // host -> address -> step
	staged  map[string]map[string]string     // host -> address -> release id
}

// parallel runs fn(0..n-1), at most opts.Parallelism at a time.
func (r *runner) parallel(n int, fn func(int)) { ForEach(n, r.opts.Parallelism, fn) }

// ForEach runs fn(0..n-1), at most limit at a time (at least one), and
// returns when all are done: the one way gsd works on hosts in parallel.
func ForEach(n, limit int, fn func(i int)) {
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

func (r *runner) kind(s *plan.Step) (Kind, error) {
	k, ok := r.opts.Kinds[s.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: this gsd cannot apply resources of kind %q", s.Address, s.Kind)
	}
	return k, nil
}

// prepare connects to a host, takes its lock, uploads what it lacks and
// stages the releases its steps activate.
func (r *runner) prepare(hp *plan.HostPlan, dial Dialer, res *Result) (Conn, error) {
	conn, err := dial(r.ctx, hp.Host, func(msg string) { r.hooks.Message(hp.Host, msg) })
	if err != nil {
		return nil, err
	}
	fail := func(err error) (Conn, error) {
		r.unlock(conn)
		return nil, err
	}
	if err := takeLock(r.ctx, conn, r.opts); err != nil {
		conn.Close()
		return nil, fmt.Errorf("host %s: %w", hp.Host, err)
	}
	for _, u := range hp.Uploads {
		if stopped(r.opts.Stop) {
			return fail(fmt.Errorf("host %s: stopped before uploading %s: %w", hp.Host, u.Name, ErrStopped))
		}
		art, ok := r.plan.Artifacts[u.SHA256]
		if !ok {
			return fail(fmt.Errorf("host %s: the plan names no file for artifact %s", hp.Host, plan.ShortHash(u.SHA256)))
		}
		r.hooks.Uploading(hp.Host, u)
		path, u := art.Path, u
		open := func() (io.ReadCloser, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			return &progressReader{ReadCloser: f, report: func(n int64) { r.hooks.UploadProgress(hp.Host, u, n) }}, nil
		}
		if err := conn.Stage(r.ctx, u.SHA256, u.Size, u.Name, open); err != nil {
			return fail(fmt.Errorf("host %s: uploading %s: %w", hp.Host, u.Name, err))
		}
		res.Uploaded += u.Size
		r.hooks.Uploaded(hp.Host, u)
	}
	for _, s := range hp.Steps {
		if s.Action == plan.ActionNoOp || s.Action == plan.ActionDelete {
			continue
		}
		if stopped(r.opts.Stop) {
			return fail(fmt.Errorf("host %s: stopped before staging %s: %w", hp.Host, s.Address, ErrStopped))
		}
		id, err := r.stage(conn, hp.Host, s)
		if err != nil {
			return fail(fmt.Errorf("host %s: %s: staging the release: %w", hp.Host, s.Address, err))
		}
		r.mu.Lock()
		r.staged[hp.Host][s.Address] = id
		r.mu.Unlock()
		if s.Release == "" {
			r.hooks.Staged(hp.Host, s, id)
		}
	}
	return conn, nil
}

// stage stores a step's release on the host, or names the one it holds.
func (r *runner) stage(conn Conn, host string, s *plan.Step) (string, error) {
	if s.Release != "" {
		return s.Release, nil
	}
	k, err := r.kind(s)
	if err != nil {
		return "", err
	}
	var secrets map[string]string
	if len(s.Secrets) > 0 {
		if r.opts.Secrets == nil {
			return "", errors.New("the release needs secret values and none were given")
		}
		if secrets, err = r.opts.Secrets(host, s); err != nil {
			return "", err
		}
	}
	return k.Stage(r.ctx, conn, s, secrets)
}

// unlock releases a host's lock and closes the connection, never waiting
// long: a host that stopped answering keeps its lock until the agent's own
// stale-lock rules free it.
func (r *runner) unlock(conn Conn) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
	defer cancel()
	conn.Call(uctx, protocol.OpUnlock, nil, nil)
	conn.Close()
}

func (r *runner) release() {
	r.mu.Lock()
	conns := r.conns
	r.conns = map[string]Conn{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); r.unlock(c) }()
	}
	wg.Wait()
}

// hostOutcome is one host's part in a batch.
type hostOutcome struct {
	host    string
	changed bool // the step ran, at least in part
	failure *HostFailure
}

// rollout carries out one service's rollout and reports whether the run
// must go no further (a stop, a pause or too many failures).
func (r *runner) rollout(ro *plan.Rollout, rep *RolloutReport) (halt bool) {
	var changed []string // hosts this rollout changed, in order
	failures := 0
	for bi, batch := range ro.Batches {
		if stopped(r.opts.Stop) || r.ctx.Err() != nil {
			rep.Untouched = append(rep.Untouched, rest(ro.Batches, bi)...)
			return true
		}
		if bi > 0 && ro.PauseMS > 0 && !r.pause(time.Duration(ro.PauseMS)*time.Millisecond) {
			rep.Untouched = append(rep.Untouched, rest(ro.Batches, bi)...)
			return true
		}
		r.hooks.Batch(ro, bi+1, batch)
		outcomes := make([]hostOutcome, len(batch))
		r.parallel(len(batch), func(i int) { outcomes[i] = r.changeHost(ro, batch[i]) })
		var failedNow []*HostFailure
		var batchChanged []string
		for i := range outcomes {
			if outcomes[i].changed {
				batchChanged = append(batchChanged, outcomes[i].host)
			}
			if outcomes[i].failure != nil {
				failedNow = append(failedNow, outcomes[i].failure)
			}
		}
		changed = append(changed, batchChanged...)
		failures += len(failedNow)
		rep.BatchesDone = bi + 1
		if failures > ro.MaxFailures {
			rep.Stopped = true
			if ro.AutoRollback {
				scope := batchChanged
				if ro.RollbackScope == "all" {
					scope = changed
				}
				rep.AlsoRolledBack = r.rollBack(ro, scope, failedNow)
			}
			for _, f := range failedNow {
				rep.Failures = append(rep.Failures, *f)
			}
			rep.Untouched = append(rep.Untouched, rest(ro.Batches, bi+1)...)
			return true
		}
		if len(failedNow) > 0 && ro.AutoRollback {
			// Within max_failures the rollout goes on, but a host left
			// unhealthy is still switched back.
			var hosts []string
			for _, f := range failedNow {
				hosts = append(hosts, f.Host)
			}
			r.rollBack(ro, hosts, failedNow)
			// They run their old release again: a later rollback of
			// scope "all" must not restart them a second time.
			changed = slices.DeleteFunc(changed, func(h string) bool { return slices.Contains(hosts, h) })
		}
		for _, f := range failedNow {
			rep.Failures = append(rep.Failures, *f)
		}
		if bi == 0 && ro.Canary && ro.CanaryPause && !r.opts.Continue && len(ro.Batches) > 1 {
			rep.Paused = true
			rep.Untouched = append(rep.Untouched, rest(ro.Batches, 1)...)
			r.hooks.Paused(ro, batch)
			return true
		}
	}
	return false
}

// rest lists the hosts of batches[from:].
func rest(batches [][]string, from int) []string {
	var out []string
	for _, b := range batches[min(from, len(batches)):] {
		out = append(out, b...)
	}
	return out
}

// pause waits d between batches; a stop or an abort ends it early.
func (r *runner) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.opts.Stop:
		return false
	case <-r.ctx.Done():
		return false
	}
}

// changeHost activates a resource's new release on one host and runs its
// health gate.
func (r *runner) changeHost(ro *plan.Rollout, host string) hostOutcome {
	out := hostOutcome{host: host}
	res := r.results[host]
	r.mu.Lock()
	conn := r.conns[host]
	release := r.staged[host][ro.Address]
	r.mu.Unlock()
	step := r.steps[host][ro.Address]
	fail := func(phase string, err error, h *protocol.HealthResult) hostOutcome {
		out.failure = &HostFailure{Host: host, Phase: phase, Err: err.Error(), Health: h}
		r.mu.Lock()
		if res.Err == nil {
			res.Err = fmt.Errorf("host %s: %s: %w", host, ro.Address, err)
		}
		r.mu.Unlock()
		return out
	}
	switch {
	case step == nil || step.Action == plan.ActionNoOp:
		return out
	case conn == nil:
		// The host failed before (unreachable, locked, upload): it
		// counts against the rollout, but it keeps its old error.
		out.failure = &HostFailure{Host: host, Phase: "change", Err: errString(res.Err, "not connected")}
		return out
	}
	k, err := r.kind(step)
	if err != nil {
		return fail("change", err, nil)
	}
	r.hooks.StepStart(host, step)
	out.changed = true
	if step.Action == plan.ActionDelete {
		err = k.Delete(r.ctx, conn, step)
	} else {
		err = k.Activate(r.ctx, conn, step, release, step.Effect)
	}
	if err != nil {
		r.hooks.StepFailed(host, step, err)
		return fail("change", err, nil)
	}
	r.mu.Lock()
	res.Completed++
	r.mu.Unlock()
	r.hooks.StepDone(host, step)
	if !ro.Gated || !gated(step) {
		return out
	}
	h, err := r.health(conn, host, ro, step)
	if err != nil {
		return fail("health", err, h)
	}
	return out
}

// gated says whether a step touched the running process (started,
// restarted or reloaded it), which is what a health gate is for; a change
// the service manager applies in place is not gated.
func gated(s *plan.Step) bool {
	switch s.Effect {
	case protocol.EffectRestart, protocol.EffectStart, protocol.EffectReload:
		return true
	}
	return false
}

func errString(err error, otherwise string) string {
	if err == nil {
		return otherwise
	}
	return err.Error()
}

// health runs the resource's check on the host and returns an error that
// says which check failed and how.
func (r *runner) health(conn Conn, host string, ro *plan.Rollout, step *plan.Step) (*protocol.HealthResult, error) {
	check := ro.HealthOn(host)
	if check == nil {
		check = &DefaultHealth
	}
	k, err := r.kind(step)
	if err != nil {
		return nil, err
	}
	r.hooks.Health(host, step)
	res, err := k.Health(r.ctx, conn, step, *check)
	if err != nil {
		err = fmt.Errorf("health check: %w", err)
		r.hooks.Unhealthy(host, step, nil, err)
		return nil, err
	}
	if !res.Healthy {
		err := fmt.Errorf("%s check failed after %s and %d probes: %s", res.Kind, time.Duration(res.ElapsedMS)*time.Millisecond, res.Probes, res.Last)
		r.hooks.Unhealthy(host, step, &res, err)
		return &res, err
	}
	r.hooks.Healthy(host, step, &res)
	return &res, nil
}

// DefaultHealth is the check of a service without a health block: it must
// be running.
var DefaultHealth = protocol.HealthCheck{TimeoutMS: 30000, IntervalMS: 500}

// rollBack switches hosts back to the release they ran before, whole
// (binary, settings and files), and checks them again. A new resource has
// no release before and is stopped instead.
//
// It returns what happened to the hosts of the scope that had not failed.
func (r *runner) rollBack(ro *plan.Rollout, hosts []string, failures []*HostFailure) (others []string) {
	byHost := map[string]*HostFailure{}
	for _, f := range failures {
		byHost[f.Host] = f
	}
	notes := make([]string, len(hosts))
	healthy := make([]bool, len(hosts))
	r.parallel(len(hosts), func(i int) {
		host := hosts[i]
		r.mu.Lock()
		conn := r.conns[host]
		release := r.staged[host][ro.Address]
		r.mu.Unlock()
		step := r.steps[host][ro.Address]
		if conn == nil || step == nil {
			return
		}
		k, err := r.kind(step)
		if err != nil {
			notes[i] = "rollback failed: " + err.Error()
			return
		}
		r.hooks.RollingBack(host, step)
		effect := protocol.EffectRestart
		if !gated(step) {
			effect = protocol.EffectNone
		}
		switch {
		case step.From != "" && step.From != release:
			err = k.Activate(r.ctx, conn, step, step.From, effect)
			notes[i] = fmt.Sprintf("switched back to %s (release %s)", orUnknown(step.OldVersion), step.From)
		case step.Action == plan.ActionCreate:
			err = k.Activate(r.ctx, conn, step, release, protocol.EffectStop)
			notes[i] = "stopped (a new service has no previous release)"
		default:
			notes[i] = "left as it is (it ran this release already)"
			r.hooks.RolledBack(host, step, nil)
			return
		}
		if err != nil {
			notes[i] = "rollback failed: " + err.Error()
			r.hooks.RolledBack(host, step, err)
			return
		}
		if step.Action != plan.ActionCreate {
			if _, herr := r.health(conn, host, ro, step); herr != nil {
				notes[i] += ", still unhealthy: " + herr.Error()
			} else {
				notes[i] += " and healthy"
				healthy[i] = true
			}
		}
		r.hooks.RolledBack(host, step, nil)
	})
	for i, host := range hosts {
		if f := byHost[host]; f != nil {
			f.Rollback, f.RolledBackHealthy = notes[i], healthy[i]
		} else if notes[i] != "" {
			others = append(others, host+": "+notes[i])
		}
	}
	return others
}

func orUnknown(v string) string {
	if v == "" {
		return "the previous release"
	}
	return v
}

func hasWork(hp *plan.HostPlan) bool {
	if len(hp.Uploads) > 0 {
		return true
	}
	for _, s := range hp.Steps {
		if s.Action != plan.ActionNoOp {
			return true
		}
	}
	return false
}

// ErrStopped is the error of hosts left alone after a graceful stop.
var ErrStopped = errors.New("stopped by request")

// progressReader reports how much of an artifact has been read, which is
// what has been sent but for what the transport buffers.
type progressReader struct {
	io.ReadCloser
	n      int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	if n > 0 {
		p.n += int64(n)
		p.report(p.n)
	}
	return n, err
}
