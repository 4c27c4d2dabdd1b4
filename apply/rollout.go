package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// More event kinds, for rollouts.
const (
	EventBatch      = "batch"     // a rollout batch starts
	EventHealth     = "health"    // a host's health gate starts
	EventHealthy    = "healthy"   // it passed
	EventUnhealthy  = "unhealthy" // it failed
	EventRollback   = "rollback"  // a host is switched back
	EventRolledBack = "rolled-back"
	EventPaused     = "paused" // the rollout waits for gsd apply -continue
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

// RolloutReport is how one service's rollout went.
type RolloutReport struct {
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

// Run carries out p and returns the per-host results; see Execute.
func Run(ctx context.Context, p *plan.Plan, hosts map[string]*config.Host, want Desired, dial Dialer, opts Options) []Result {
	return Execute(ctx, p, hosts, want, dial, opts).Results
}

// Execute carries out p. First, on every host with work (at most
// opts.Parallelism at a time), it connects, takes the lock and uploads
// what the host lacks, so nothing stops while bytes are still on the
// wire. Then it goes through the plan's rollouts in order, one service
// at a time and batch by batch: every host of a batch is changed and
// health-gated before the next batch starts. When more hosts fail than
// the rollout allows, it stops there: with auto_rollback the failing
// batch (or, with rollback_scope "all", every host it changed) is
// switched back to its previous release and checked again, later batches
// and later services are left untouched, and the failure is reported.
func Execute(ctx context.Context, p *plan.Plan, hosts map[string]*config.Host, want Desired, dial Dialer, opts Options) Outcome {
	var emitMu sync.Mutex
	emit := func(e Event) {
		if opts.OnEvent == nil {
			return
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		opts.OnEvent(e)
	}
	r := &runner{ctx: ctx, want: want, opts: opts, emit: emit, conns: map[string]Conn{}, results: map[string]*Result{}, steps: map[string]map[string]*plan.Step{}}
	var work []*plan.HostPlan
	for _, hp := range p.Hosts {
		if hp.Error != "" || !hasWork(hp) {
			continue
		}
		work = append(work, hp)
		r.results[hp.Host] = &Result{Host: hp.Host}
		r.steps[hp.Host] = map[string]*plan.Step{}
		for _, s := range hp.Steps {
			r.steps[hp.Host][s.Service] = s
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
		emit(Event{Kind: EventHostStart, Host: hp.Host})
		conn, err := r.prepare(hp, hosts[hp.Host], dial, res)
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
		rep := RolloutReport{Service: ro.Service, Batches: len(ro.Batches)}
		if halted {
			rep.Untouched = ro.Hosts()
		} else {
			halted = r.rollout(ro, &rep)
			out.Paused = out.Paused || rep.Paused
			switch {
			case rep.Stopped:
				why = fmt.Errorf("the rollout of service.%s stopped after a failure", ro.Service)
			case halted && !rep.Paused:
				why = ErrStopped
			}
		}
		if why != nil {
			for _, h := range rep.Untouched {
				if res := r.results[h]; res != nil && res.Err == nil {
					res.Err = fmt.Errorf("host %s: service.%s not changed: %w", h, ro.Service, why)
				}
			}
		}
		out.Rollouts = append(out.Rollouts, rep)
	}

	for _, hp := range work {
		res := r.results[hp.Host]
		if res.Err != nil {
			emit(Event{Kind: EventHostFailed, Host: hp.Host, Err: res.Err})
		} else {
			emit(Event{Kind: EventHostDone, Host: hp.Host})
		}
		out.Results = append(out.Results, *res)
	}
	sort.Slice(out.Results, func(i, j int) bool { return out.Results[i].Host < out.Results[j].Host })
	return out
}

type runner struct {
	ctx     context.Context
	want    Desired
	opts    Options
	emit    func(Event)
	mu      sync.Mutex
	conns   map[string]Conn
	results map[string]*Result
	steps   map[string]map[string]*plan.Step // host -> service -> step
}

// parallel runs fn(0..n-1), at most opts.Parallelism at a time.
func (r *runner) parallel(n int, fn func(int)) {
	sem := make(chan struct{}, max(r.opts.Parallelism, 1))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// prepare connects to a host, takes its lock and uploads what it lacks.
func (r *runner) prepare(hp *plan.HostPlan, host *config.Host, dial Dialer, res *Result) (Conn, error) {
	if host == nil {
		return nil, fmt.Errorf("host %s is not in the configuration", hp.Host)
	}
	conn, err := dial(r.ctx, host)
	if err != nil {
		return nil, err
	}
	if err := takeLock(r.ctx, conn, r.opts); err != nil {
		conn.Close()
		return nil, fmt.Errorf("host %s: %w", hp.Host, err)
	}
	for _, u := range hp.Uploads {
		if stopped(r.opts.Stop) {
			r.unlock(conn)
			return nil, fmt.Errorf("host %s: stopped before uploading %s: %w", hp.Host, u.Name, ErrStopped)
		}
		art := r.want.Artifacts[u.SHA256]
		if art == nil {
			r.unlock(conn)
			return nil, fmt.Errorf("host %s: no artifact %s to upload", hp.Host, plan.ShortHash(u.SHA256))
		}
		r.emit(Event{Kind: EventUpload, Host: hp.Host, Bytes: u.Size})
		path := art.Path
		open := func() (io.ReadCloser, error) { return os.Open(path) }
		if err := conn.Stage(r.ctx, u.SHA256, u.Size, u.Name, open); err != nil {
			r.unlock(conn)
			return nil, fmt.Errorf("host %s: uploading %s: %w", hp.Host, u.Name, err)
		}
		res.Uploaded += u.Size
		r.emit(Event{Kind: EventUploaded, Host: hp.Host, Bytes: u.Size})
	}
	return conn, nil
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
		r.emit(Event{Kind: EventBatch, Service: ro.Service, Batch: bi + 1, Batches: len(ro.Batches), Hosts: batch})
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
		}
		for _, f := range failedNow {
			rep.Failures = append(rep.Failures, *f)
		}
		if bi == 0 && ro.Canary && ro.CanaryPause && !r.opts.Continue && len(ro.Batches) > 1 {
			rep.Paused = true
			rep.Untouched = append(rep.Untouched, rest(ro.Batches, 1)...)
			r.emit(Event{Kind: EventPaused, Service: ro.Service, Hosts: batch})
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

// changeHost runs a service's step on one host and its health gate.
func (r *runner) changeHost(ro *plan.Rollout, host string) hostOutcome {
	out := hostOutcome{host: host}
	res := r.results[host]
	r.mu.Lock()
	conn := r.conns[host]
	r.mu.Unlock()
	step := r.steps[host][ro.Service]
	fail := func(phase string, err error, h *protocol.HealthResult) hostOutcome {
		out.failure = &HostFailure{Host: host, Phase: phase, Err: err.Error(), Health: h}
		r.mu.Lock()
		if res.Err == nil {
			res.Err = fmt.Errorf("host %s: service.%s: %w", host, ro.Service, err)
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
	r.emit(Event{Kind: EventStepStart, Host: host, Service: step.Service, Action: step.Action})
	out.changed = true
	err := runStep(r.ctx, conn, step, r.want, func(op string) {
		r.emit(Event{Kind: EventOp, Host: host, Service: step.Service, Action: step.Action, Op: op})
	})
	if err != nil {
		r.emit(Event{Kind: EventStepFailed, Host: host, Service: step.Service, Action: step.Action, Err: err})
		return fail("change", err, nil)
	}
	r.mu.Lock()
	res.Completed++
	r.mu.Unlock()
	r.emit(Event{Kind: EventStepDone, Host: host, Service: step.Service, Action: step.Action})
	if !ro.Gated || !gated(step) {
		return out
	}
	h, err := r.health(conn, host, ro.Service)
	if err != nil {
		return fail("health", err, h)
	}
	return out
}

// gated says whether a step (re)started the service, which is what a
// health gate is for; a change the SCM applies in place is not gated.
func gated(s *plan.Step) bool {
	return s.Action == plan.ActionCreate || s.Restart || s.Start || s.Reload
}

func errString(err error, otherwise string) string {
	if err == nil {
		return otherwise
	}
	return err.Error()
}

// health runs the service's check on the host and returns an error that
// says which check failed and how.
func (r *runner) health(conn Conn, host, service string) (*protocol.HealthResult, error) {
	check := r.want.Health[service]
	if check == nil {
		check = &DefaultHealth
	}
	r.emit(Event{Kind: EventHealth, Host: host, Service: service})
	var res protocol.HealthResult
	if err := conn.Call(r.ctx, protocol.OpHealth, protocol.HealthArgs{Service: service, Check: *check}, &res); err != nil {
		err = fmt.Errorf("health check: %w", err)
		r.emit(Event{Kind: EventUnhealthy, Host: host, Service: service, Err: err})
		return nil, err
	}
	if !res.Healthy {
		err := fmt.Errorf("%s check failed after %s and %d probes: %s", res.Kind, time.Duration(res.ElapsedMS)*time.Millisecond, res.Probes, res.Last)
		r.emit(Event{Kind: EventUnhealthy, Host: host, Service: service, Err: err, Health: &res})
		return &res, err
	}
	r.emit(Event{Kind: EventHealthy, Host: host, Service: service, Health: &res})
	return &res, nil
}

// DefaultHealth is the check of a service without a health block: it must
// be running.
var DefaultHealth = protocol.HealthCheck{TimeoutMS: 30000, IntervalMS: 500}

// rollBack switches hosts back to their previous release and checks them
// again. A new service has no previous release and is stopped instead; a
// change that kept the release (settings only) cannot be undone here and
// is left as it is, which the report says.
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
		r.mu.Unlock()
		step := r.steps[host][ro.Service]
		if conn == nil || step == nil {
			return
		}
		r.emit(Event{Kind: EventRollback, Host: host, Service: ro.Service})
		ref := protocol.ServiceRef{Service: ro.Service}
		var err error
		switch step.Action {
		case plan.ActionReplace:
			err = conn.Call(r.ctx, protocol.OpRollback, ref, nil)
			if err == nil {
				notes[i] = "switched back to " + orUnknown(step.OldVersion)
			}
		case plan.ActionCreate:
			err = conn.Call(r.ctx, protocol.OpStop, ref, nil)
			if err == nil {
				notes[i] = "stopped (a new service has no previous release)"
			}
		default:
			notes[i] = "left as it is (the change kept the release, so there is none to switch back to)"
			return
		}
		if err != nil {
			notes[i] = "rollback failed: " + err.Error()
			r.emit(Event{Kind: EventRolledBack, Host: host, Service: ro.Service, Err: err})
			return
		}
		if step.Action == plan.ActionReplace {
			if _, herr := r.health(conn, host, ro.Service); herr != nil {
				notes[i] += ", still unhealthy: " + herr.Error()
			} else {
				notes[i] += " and healthy"
				healthy[i] = true
			}
		}
		r.emit(Event{Kind: EventRolledBack, Host: host, Service: ro.Service})
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
