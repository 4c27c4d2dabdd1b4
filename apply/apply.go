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

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// Conn is a connection to one host's agent: what apply needs of
// providers.Host, so the engine's ordering can be tested without a host.
type Conn interface {
	Call(ctx context.Context, op string, args, result any) error
	Stage(ctx context.Context, sha string, size int64, name string, open func() (io.ReadCloser, error)) error
	Close() error
}

// Dialer connects to a host's agent.
type Dialer func(ctx context.Context, host *config.Host) (Conn, error)

// Event kinds, in the order a host goes through them.
const (
	EventHostStart  = "host-start"
	EventUpload     = "upload"
	EventUploaded   = "uploaded"
	EventStepStart  = "step-start"
	EventOp         = "op" // one agent operation inside a step
	EventStepDone   = "step-done"
	EventStepFailed = "step-failed"
	EventHostDone   = "host-done"
	EventHostFailed = "host-failed"
)

// Event reports progress. The engine never prints; views render events.
type Event struct {
	Kind    string
	Host    string
	Service string
	Action  plan.Action
	// Op is the agent operation for EventOp: "stop", "start", "reload"...
	Op    string
	Bytes int64
	Err   error
}

// Desired is what the plan's steps are carried out with: the specs and
// file contents, secrets included, which a plan never holds. gsd makes it
// from the same configuration whose fingerprint the plan carries.
type Desired struct {
	Specs     map[string]protocol.ServiceSpec // by service name
	Files     map[string][]*config.File       // by service name
	Artifacts map[string]*build.Artifact      // by SHA-256
}

// Options configure Run.
type Options struct {
	Parallelism int
	// Operator names who applies, recorded in each host's lock.
	Operator string
	OnEvent  func(Event)
	// LockTimeout is how long to keep trying a host held by another
	// apply; 0 fails at once, naming the holder.
	LockTimeout time.Duration
	// Stop, when closed, ends the run gracefully: steps in flight finish,
	// no new step starts (the first Ctrl-C). Cancelling the context aborts
	// at once (the second).
	Stop <-chan struct{}
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// Result is the outcome on one host.
type Result struct {
	Host      string
	Err       error
	Completed int   // steps done
	Uploaded  int64 // bytes of artifacts sent
}

// Run carries out p on every host that has work, at most
// opts.Parallelism at a time. A host that fails stops there and does not
// stop the others; its error names the step. Uploads on a host all
// happen before its first service is touched, so switching a binary costs
// only a stop and a start.
func Run(ctx context.Context, p *plan.Plan, hosts map[string]*config.Host, want Desired, dial Dialer, opts Options) []Result {
	emit := func(e Event) {
		if opts.OnEvent != nil {
			opts.OnEvent(e)
		}
	}
	var mu sync.Mutex
	var results []Result
	sem := make(chan struct{}, max(opts.Parallelism, 1))
	var wg sync.WaitGroup
	var emitMu sync.Mutex
	syncEmit := func(e Event) {
		emitMu.Lock()
		defer emitMu.Unlock()
		emit(e)
	}
	for _, hp := range p.Hosts {
		if hp.Error != "" || !hasWork(hp) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if stopped(opts.Stop) {
				mu.Lock()
				results = append(results, Result{Host: hp.Host, Err: fmt.Errorf("host %s: not started: %w", hp.Host, ErrStopped)})
				mu.Unlock()
				return
			}
			r := runHost(ctx, hp, hosts[hp.Host], want, dial, opts, syncEmit)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].Host < results[j].Host })
	return results
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

func runHost(ctx context.Context, hp *plan.HostPlan, host *config.Host, want Desired, dial Dialer, opts Options, emit func(Event)) (r Result) {
	r.Host = hp.Host
	emit(Event{Kind: EventHostStart, Host: hp.Host})
	defer func() {
		if r.Err != nil {
			emit(Event{Kind: EventHostFailed, Host: hp.Host, Err: r.Err})
		} else {
			emit(Event{Kind: EventHostDone, Host: hp.Host})
		}
	}()
	if host == nil {
		r.Err = fmt.Errorf("host %s is not in the configuration", hp.Host)
		return r
	}
	conn, err := dial(ctx, host)
	if err != nil {
		r.Err = err
		return r
	}
	defer conn.Close()
	if err := takeLock(ctx, conn, opts); err != nil {
		r.Err = fmt.Errorf("host %s: %w", hp.Host, err)
		return r
	}
	defer func() {
		// Unlock even after an abort, but never wait on it for long: a
		// host that stopped answering keeps its lock until the agent's
		// own stale-lock rules free it.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		conn.Call(uctx, protocol.OpUnlock, nil, nil)
	}()

	for _, u := range hp.Uploads {
		if stopped(opts.Stop) {
			r.Err = fmt.Errorf("host %s: stopped before uploading %s: %w", hp.Host, u.Name, ErrStopped)
			return r
		}
		art := want.Artifacts[u.SHA256]
		if art == nil {
			r.Err = fmt.Errorf("host %s: no artifact %s to upload", hp.Host, plan.ShortHash(u.SHA256))
			return r
		}
		emit(Event{Kind: EventUpload, Host: hp.Host, Bytes: u.Size})
		path := art.Path
		open := func() (io.ReadCloser, error) { return os.Open(path) }
		if err := conn.Stage(ctx, u.SHA256, u.Size, u.Name, open); err != nil {
			r.Err = fmt.Errorf("host %s: uploading %s: %w", hp.Host, u.Name, err)
			return r
		}
		r.Uploaded += u.Size
		emit(Event{Kind: EventUploaded, Host: hp.Host, Bytes: u.Size})
	}
	for _, s := range hp.Steps {
		if s.Action == plan.ActionNoOp {
			continue
		}
		if stopped(opts.Stop) {
			// Stop between steps, leaving every service either fully
			// changed or untouched.
			r.Err = fmt.Errorf("host %s: stopped before service.%s: %w", hp.Host, s.Service, ErrStopped)
			return r
		}
		emit(Event{Kind: EventStepStart, Host: hp.Host, Service: s.Service, Action: s.Action})
		if err := runStep(ctx, conn, s, want, func(op string) {
			emit(Event{Kind: EventOp, Host: hp.Host, Service: s.Service, Action: s.Action, Op: op})
		}); err != nil {
			r.Err = fmt.Errorf("host %s: service.%s: %w", hp.Host, s.Service, err)
			emit(Event{Kind: EventStepFailed, Host: hp.Host, Service: s.Service, Action: s.Action, Err: err})
			return r
		}
		r.Completed++
		emit(Event{Kind: EventStepDone, Host: hp.Host, Service: s.Service, Action: s.Action})
	}
	return r
}

// runStep carries out one service's step with the agent's operations.
// ensure_service reconfigures the SCM (binary path, arguments, account,
// environment...) without restarting; the restart, reload or start that
// the plan asked for follows it, so the process picks up everything at
// once.
func runStep(ctx context.Context, conn Conn, s *plan.Step, want Desired, op func(string)) error {
	call := func(name string, args any) error {
		op(name)
		return conn.Call(ctx, name, args, nil)
	}
	ref := protocol.ServiceRef{Service: s.Service}
	if s.Action == plan.ActionDelete {
		if err := call(protocol.OpStop, ref); err != nil {
			return err
		}
		return call(protocol.OpDeleteService, protocol.ServiceRef{Service: s.Service, Purge: true})
	}
	spec, ok := want.Specs[s.Service]
	if !ok {
		return errors.New("no desired spec for the service")
	}
	spec.Version = s.Version
	for _, f := range want.Files[s.Service] {
		if !fileChanged(s, f.Name) {
			continue
		}
		if err := call(protocol.OpWriteFile, protocol.WriteFileArgs{Service: s.Service, Name: f.Name, Content: []byte(f.Content.Value)}); err != nil {
			return err
		}
	}
	for _, c := range s.Changes {
		if name, isFile := cutPrefix(c.Attribute, "file."); isFile && c.New == nil {
			if err := call(protocol.OpDeleteFile, protocol.DeleteFileArgs{Service: s.Service, Name: name}); err != nil {
				return err
			}
		}
	}
	if err := call(protocol.OpEnsureService, spec); err != nil {
		return err
	}
	timeout := protocol.ServiceRef{Service: s.Service, TimeoutMS: max(spec.StopTimeout, 1000) + 30000}
	switch {
	case s.Restart:
		if err := call(protocol.OpStop, timeout); err != nil {
			return err
		}
		return call(protocol.OpStart, timeout)
	case s.Start:
		return call(protocol.OpStart, timeout)
	case s.Reload:
		return call(protocol.OpReload, ref)
	}
	return nil
}

// takeLock takes the host's lock, waiting up to opts.LockTimeout while
// another apply holds it. The error names the holder, so the user knows
// whom to ask.
func takeLock(ctx context.Context, conn Conn, opts Options) error {
	deadline := time.Now().Add(opts.LockTimeout)
	for {
		err := conn.Call(ctx, protocol.OpLock, protocol.LockArgs{Operator: opts.Operator}, nil)
		var ae *client.Error
		if err == nil || !errors.As(err, &ae) || ae.Code() != protocol.CodeLocked {
			if err != nil {
				return fmt.Errorf("taking the lock: %w", err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return lockedError(ae.Detail.Holder, opts.LockTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}

// lockRetry is how often a held lock is tried again.
var lockRetry = time.Second

func lockedError(h *protocol.LockHolder, waited time.Duration) error {
	who := "another apply"
	if h != nil {
		who = h.Operator
		if who == "" {
			who = h.User
		}
		who = fmt.Sprintf("%s (agent pid %d on %s, since %s)", who, h.PID, h.Machine, h.Since.UTC().Format(time.RFC3339))
	}
	msg := fmt.Sprintf("locked by %s", who)
	if waited > 0 {
		msg += fmt.Sprintf("; still held after waiting %s", waited)
	}
	return errors.New(msg + ". Wait for it to finish, or use -lock-timeout to wait")
}

func fileChanged(s *plan.Step, name string) bool {
	if s.Action == plan.ActionCreate {
		return true
	}
	for _, c := range s.Changes {
		if c.Attribute == "file."+name && c.New != nil {
			return true
		}
	}
	return false
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}
