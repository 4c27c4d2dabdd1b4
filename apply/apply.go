package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	// Batch (1-based) of Batches, and its Hosts, for EventBatch; Hosts
	// are the canary hosts for EventPaused.
	Batch, Batches int
	Hosts          []string
	// Health is the check's outcome for EventHealthy and EventUnhealthy.
	Health *protocol.HealthResult
}

// Desired is what the plan's steps are carried out with: the specs and
// file contents, secrets included, which a plan never holds. gsd makes it
// from the same configuration whose fingerprint the plan carries.
type Desired struct {
	Specs     map[string]protocol.ServiceSpec // by service name
	Files     map[string][]*config.File       // by service name
	Artifacts map[string]*build.Artifact      // by SHA-256
	// Health is each service's check; a service without one must be
	// running (DefaultHealth).
	Health map[string]*protocol.HealthCheck
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
	// Continue goes on past a canary batch that asks to pause
	// (gsd apply -continue).
	Continue bool
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
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
