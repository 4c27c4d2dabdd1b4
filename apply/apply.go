package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// Conn is a connection to one host's agent: what apply needs of
// providers.Host, so the engine's ordering can be tested without a host.
type Conn interface {
	Call(ctx context.Context, op string, args, result any) error
	Stage(ctx context.Context, sha string, size int64, name string, open func() (io.ReadCloser, error)) error
	Close() error
}

// Dialer connects to the agent of the plan's host with that name. A
// dialer may call report with what the agent says while it works.
type Dialer func(ctx context.Context, host string, report func(message string)) (Conn, error)

// Secrets resolves, for a step on a host, the secret values its release
// needs (the keys in Step.Secrets). A plan never holds them; gsd resolves
// them again from the configuration whose fingerprint the plan carries.
type Secrets func(host string, s *plan.Step) (map[string]string, error)

// Options configure Execute.
type Options struct {
	Parallelism int
	// Operator names who applies, recorded in each host's lock and with
	// each release activated.
	Operator string
	Hooks    Hooks
	// Kinds carry out steps by their kind; nil is DefaultKinds.
	Kinds map[string]Kind
	// Secrets fills in the secret values of releases; nil when the plan
	// needs none.
	Secrets Secrets
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
