package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/seal"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/winsec"
)

// Version is the agent's release, reported in hello and facts.
const Version = "0.1.0"

// Options configure an Agent.
type Options struct {
	// Root is the state directory, C:\ProgramData\gsd in production.
	Root string
	// Services drives the host's service manager.
	Services ServiceControl
	// ServiceHost is the executable wrapped services run as (normally this
	// agent binary); it is started with "service-host -root R -service N".
	ServiceHost string
	// MaxLine bounds request lines (protocol.DefaultMaxLine if zero).
	MaxLine int
	// KeepReleases overrides state.json's keep_releases when positive.
	KeepReleases int
	// HostPath maps an absolute Windows path (a custom file path or log
	// folder) to this host's file system; nil is the identity on Windows
	// and a folder under Root elsewhere.
	HostPath func(string) string
	// Sealer protects kept releases' secrets; nil is seal.ForMachine.
	Sealer seal.Sealer
	// WatchTick is how often the watchdog looks (one second if zero).
	WatchTick time.Duration
	// Kinds are handlers of resource kinds other than services, by kind,
	// in place of the registered ones (see RegisterKind).
	Kinds map[string]Handler
	// MarkedForDeleteWait bounds the wait for a same-named service that
	// Windows has marked for deletion (DefaultMarkedForDeleteWait if zero).
	MarkedForDeleteWait time.Duration
	// Security is the host's Windows security: account rights, the
	// agent's token privileges, its folders' owners and access lists;
	// nil is winsec.Local.
	Security winsec.Host
}

// Agent serves one client session at a time.
type Agent struct {
	opts   Options
	layout state.Layout
	store  artifacts.Store
	// releases is the immutable release store.
	releases releases.Store
	lock     *state.Lock
	// timeout bounds stops and starts of the activation in progress.
	timeout time.Duration
	// watch is the session's watchdog (see Serve).
	watch *watchdog
	// lockRecovered is the journal that taking the lock last finished or
	// reverted, nil if there was none.
	lockRecovered *state.Journal
	hashes        *artifacts.HashCache
	// rootSecured is set once the root's access control is in place (or
	// known to be impossible on this host, then rootGap says why).
	rootSecured bool
	rootGap     string
	rootRepairs []string
	// recovering is set while ensureLocked replays a journal, whose steps
	// run under the lock being taken.
	recovering bool
	// handlers apply the kinds of resource other than services.
	handlers map[string]Handler
}

// New returns an agent for opts.
func New(opts Options) *Agent {
	l := state.Layout{Root: opts.Root}
	h := &artifacts.HashCache{}
	sealer := opts.Sealer
	if sealer == nil {
		sealer = seal.ForMachine(opts.Root)
	}
	a := &Agent{opts: opts, layout: l, hashes: h, store: artifacts.Store{Dir: l.ArtifactDir(), Hashes: h},
		releases: releases.Store{Dir: l.ReleaseDir(), Sealer: sealer, KeyFile: l.ReleaseKey()}}
	a.handlers = a.newHandlers()
	return a
}

// handler runs one op and returns its result payload.
type handler func(ctx context.Context, req protocol.Request, emit progressFunc) (any, error)

type progressFunc func(message string, payload any)

// opInfo describes an op. Mutating ops take the host lock themselves, after
// validating their args, so a refused request never touches the host and
// read-only ops (facts) work while someone else applies.
type opInfo struct {
	run handler
}

func (a *Agent) ops() map[string]opInfo {
	return map[string]opInfo{
		protocol.OpHello:          {run: a.opHello},
		protocol.OpFacts:          {run: a.opFacts},
		protocol.OpLock:           {run: a.opLock},
		protocol.OpUnlock:         {run: a.opUnlock},
		protocol.OpStageRelease:   {run: a.opStageRelease},
		protocol.OpActivate:       {run: a.opActivate},
		protocol.OpDeleteService:  {run: a.opDeleteService},
		protocol.OpDelete:         {run: a.opDelete},
		protocol.OpRecoverJournal: {run: a.opRecoverJournal},
		protocol.OpBreakLock:      {run: a.opBreakLock},
		protocol.OpHealth:         {run: a.opHealth},
		protocol.OpLogs:           {run: a.opLogs},
		// stage and heartbeat are handled by Serve itself: stage consumes
		// the frames that follow it, heartbeat gets no answer.
		protocol.OpStage:     {},
		protocol.OpHeartbeat: {},
	}
}

// OpNames lists the ops this agent serves, for hello: the op table's own
// keys, so the list cannot fall behind it.
func (a *Agent) OpNames() []string {
	return slices.Sorted(maps.Keys(a.ops()))
}

func (a *Agent) hello() *protocol.Hello {
	return &protocol.Hello{
		AgentVersion:    Version,
		ProtocolVersion: protocol.Version,
		MaxLineBytes:    a.maxLine(),
		OS:              runtime.GOOS,
		Ops:             a.OpNames(),
	}
}

func (a *Agent) maxLine() int {
	if a.opts.MaxLine > 0 {
		return a.opts.MaxLine
	}
	return protocol.DefaultMaxLine
}

// Serve speaks the protocol until in ends or ctx is cancelled. The host
// lock, if taken, is released when it returns.
//
// A client that sends heartbeats (protocol.OpHeartbeat) is watched: when
// it falls silent, the operation in flight finishes, the session ends and
// the lock is released, so a controller that died leaves no host locked.
func (a *Agent) Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	heard := newHeardReader(in)
	a.watch = &watchdog{in: heard, gone: cancel, stop: make(chan struct{})}
	go a.watch.run(a.watchTick())
	defer a.watch.close()
	defer a.releaseLock()
	enc := protocol.NewEncoder(out)
	if err := enc.Encode(protocol.Event{Kind: protocol.EventHello, Hello: a.hello()}); err != nil {
		return err
	}
	dec := protocol.NewDecoder(heard, a.maxLine())
	ops := a.ops()
	for ctx.Err() == nil {
		req, err := dec.Decode()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errControllerGone) {
			return err
		}
		var de *protocol.DecodeError
		if errors.As(err, &de) {
			if werr := enc.Encode(protocol.Event{ID: de.ID, Kind: protocol.EventError, Error: toProtocolError(err)}); werr != nil {
				return werr
			}
			continue
		}
		if err != nil {
			return err
		}
		if req.Op == protocol.OpHeartbeat {
			// No answer: the client does not wait for one.
			var hb protocol.HeartbeatArgs
			if protocol.DecodeArgs(req, &hb) == nil {
				a.watch.arm(hb)
			}
			continue
		}
		if req.Op == protocol.OpStage {
			if err := a.serveStage(ctx, req, dec, enc); err != nil {
				return err
			}
			continue
		}
		if err := a.serveOne(ctx, req, ops, enc); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (a *Agent) serveOne(ctx context.Context, req protocol.Request, ops map[string]opInfo, enc *protocol.Encoder) error {
	emit := func(message string, payload any) {
		ev := protocol.Event{ID: req.ID, Kind: protocol.EventProgress, Op: req.Op, Message: message}
		if payload != nil {
			ev.Result, _ = json.Marshal(payload)
		}
		enc.Encode(ev)
	}
	result, err := a.run(ctx, req, ops, emit)
	if err != nil {
		return enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventError, Op: req.Op, Error: toProtocolError(err)})
	}
	ev := protocol.Event{ID: req.ID, Kind: protocol.EventResult, Op: req.Op}
	if result != nil {
		b, merr := json.Marshal(result)
		if merr != nil {
			return enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventError, Op: req.Op, Error: toProtocolError(merr)})
		}
		ev.Result = b
	}
	return enc.Encode(ev)
}

// run executes one request: args are validated by the handler before it
// takes the lock, so a hostile request is refused with nothing written.
func (a *Agent) run(ctx context.Context, req protocol.Request, ops map[string]opInfo, emit progressFunc) (any, error) {
	info, ok := ops[req.Op]
	if !ok || info.run == nil {
		return nil, failf(protocol.CodeUnknownOp, "unknown op %q", req.Op)
	}
	return info.run(ctx, req, emit)
}

// ensureLocked takes the host lock for the rest of the session. The first
// time it is taken, leftovers of a dead agent are dealt with: its temp files
// are swept and its interrupted apply is finished or rolled back. The lock
// counts as held only once that succeeded; otherwise it is released again,
// so every later op retries the recovery instead of running on top of a
// half-done apply.
func (a *Agent) ensureLocked(ctx context.Context, operator string, emit progressFunc) error {
	if a.lock != nil || a.recovering {
		// recovering: the journal's own steps run while the lock is taken
		// but not yet settled.
		return nil
	}
	if err := a.secureRoot(); err != nil {
		return err
	}
	lk, err := state.Acquire(a.layout, operator)
	if err != nil {
		return err
	}
	if lk.BrokeStale != nil {
		emit(fmt.Sprintf("took over the lock left by dead agent pid %d (%s on %s)", lk.BrokeStale.PID, lk.BrokeStale.User, lk.BrokeStale.Machine), nil)
	}
	if lk.BrokeCorrupt {
		emit(fmt.Sprintf("took over an unreadable lock file older than %s", state.CorruptLockGrace), nil)
	}
	if err := a.settle(ctx, emit); err != nil {
		lk.Release()
		return err
	}
	a.lock = lk
	if a.watch != nil {
		a.watch.lock.Store(lk)
	}
	return nil
}

// settle sweeps temp files and recovers an interrupted apply, with the lock
// taken but not yet recorded as held.
func (a *Agent) settle(ctx context.Context, emit progressFunc) error {
	removed, err := atomicfile.SweepTemps(a.layout.Root)
	if err != nil {
		return fmt.Errorf("sweeping temp files: %w", err)
	}
	if len(removed) > 0 {
		emit(fmt.Sprintf("removed %d temp file(s) left by an interrupted run", len(removed)), nil)
	}
	if err := a.releases.SweepTemps(); err != nil {
		return fmt.Errorf("sweeping half-written releases: %w", err)
	}
	a.recovering = true
	defer func() { a.recovering = false }()
	j, err := a.recoverJournal(ctx, emit)
	if err != nil {
		return fmt.Errorf("recovering interrupted apply: %w", err)
	}
	a.lockRecovered = j
	return nil
}

func (a *Agent) releaseLock() {
	if a.lock != nil {
		if a.watch != nil {
			a.watch.lock.Store(nil)
		}
		a.lock.Release()
		a.lock = nil
	}
}

func (a *Agent) watchTick() time.Duration {
	if a.opts.WatchTick > 0 {
		return a.opts.WatchTick
	}
	return time.Second
}

func (a *Agent) loadState() (*state.State, error) {
	st, err := state.Load(a.layout)
	if err != nil {
		return nil, err
	}
	if a.opts.KeepReleases > 0 {
		st.KeepReleases = a.opts.KeepReleases
	}
	return st, nil
}

func (a *Agent) opHello(_ context.Context, req protocol.Request, _ progressFunc) (any, error) {
	var args protocol.HelloArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, failf(protocol.CodeBadRequest, "%v", err)
	}
	if args.ProtocolVersion > protocol.Version {
		return nil, failf(protocol.CodeVersion, "client speaks protocol %d, this agent (%s) only %d; upload a newer agent", args.ProtocolVersion, Version, protocol.Version)
	}
	return a.hello(), nil
}

func (a *Agent) opLock(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.LockArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, failf(protocol.CodeBadRequest, "%v", err)
	}
	if err := a.ensureLocked(ctx, args.Operator, emit); err != nil {
		return nil, err
	}
	return a.lock.Holder, nil
}

func (a *Agent) opUnlock(context.Context, protocol.Request, progressFunc) (any, error) {
	a.releaseLock()
	return struct{}{}, nil
}

// opBreakLock removes a lock an operator has verified to be dead although
// the agent cannot tell (its pid was reused by another process), named by
// pid and since so that only that lock is removed. It does not take the
// lock; the next mutating op does.
func (a *Agent) opBreakLock(_ context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.BreakLockArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	if args.PID <= 0 || args.Since.IsZero() {
		return nil, failf(protocol.CodeBadRequest, "break_lock: pid and since of the holder are required")
	}
	if a.lock != nil && a.lock.Holder.PID == args.PID && a.lock.Holder.Since.Equal(args.Since) {
		return nil, failf(protocol.CodeBadRequest, "break_lock: this session holds that lock; unlock instead")
	}
	h, err := state.BreakLock(a.layout, args.PID, args.Since)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, failf(protocol.CodeNotFound, "break_lock: the host is not locked")
	}
	if err != nil {
		return nil, err
	}
	emit(fmt.Sprintf("removed the lock of agent pid %d (%s on %s) since %s", h.PID, h.User, h.Machine, h.Since.Format(time.RFC3339)), nil)
	return h, nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
