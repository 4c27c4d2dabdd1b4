package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

func (a *Agent) opApply(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.ApplyArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	switch args.OnInterrupt {
	case "":
		args.OnInterrupt = protocol.OnInterruptComplete
	case protocol.OnInterruptComplete, protocol.OnInterruptRollback:
	default:
		return nil, failf(protocol.CodeBadRequest, "apply: on_interrupt %q must be complete or rollback", args.OnInterrupt)
	}
	if len(args.Steps) == 0 {
		return nil, failf(protocol.CodeBadRequest, "apply: no steps")
	}
	ops := a.ops()
	for _, list := range [][]protocol.Request{args.Steps, args.Rollback} {
		for i := range list {
			if info, ok := ops[list[i].Op]; !ok || !info.journaled {
				return nil, failf(protocol.CodeBadRequest, "apply: step %d: op %q cannot be journaled", i, list[i].Op)
			}
			if list[i].ID == "" {
				list[i].ID = fmt.Sprintf("%s/%d", req.ID, i)
			}
		}
	}
	// Taking the lock first finishes any older interrupted apply, so only
	// one journal ever exists.
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	// A journal can still be here if this session's own earlier apply
	// failed and so did its rollback; overwriting it would lose the record
	// of what is half done.
	if old, err := state.LoadJournal(a.layout); err != nil {
		return nil, err
	} else if old != nil {
		return nil, failf(protocol.CodeJournalPending, "apply: apply %s is unfinished (%d of %d steps done, rolling back: %v); run recover_journal first", old.ID, old.Done, len(old.Steps), old.RollingBack)
	}
	j := &state.Journal{
		ID:          req.ID,
		Started:     time.Now().UTC(),
		Steps:       redactSteps(args.Steps),
		Rollback:    redactSteps(args.Rollback),
		OnInterrupt: args.OnInterrupt,
	}
	if err := j.Save(a.layout); err != nil {
		return nil, err
	}
	return a.runJournal(ctx, j, args.Steps, args.Rollback, emit)
}

// runJournal runs the steps j has not done yet, recording each one, and
// rolls back if a step fails.
func (a *Agent) runJournal(ctx context.Context, j *state.Journal, steps, rollback []protocol.Request, emit progressFunc) (*protocol.ApplyResult, error) {
	ops := a.ops()
	for i := j.Done; i < len(steps); i++ {
		step := steps[i]
		emit("", protocol.StepProgress{Step: i, Op: step.Op, Phase: "started"})
		if _, err := a.run(ctx, step, ops, emit); err != nil {
			emit(err.Error(), protocol.StepProgress{Step: i, Op: step.Op, Phase: "failed"})
			res, rerr := a.rollBack(ctx, j, rollback, emit)
			if rerr != nil {
				return nil, fmt.Errorf("apply %s: step %d (%s) failed: %w; rollback failed too: %v", j.ID, i, step.Op, err, rerr)
			}
			return nil, &opError{code: toProtocolError(err).Code, err: fmt.Errorf("apply %s: step %d (%s) failed: %w; rolled back %d step(s)", j.ID, i, step.Op, err, res.Completed)}
		}
		j.Done = i + 1
		if err := j.Save(a.layout); err != nil {
			return nil, err
		}
		emit("", protocol.StepProgress{Step: i, Op: step.Op, Phase: "done"})
	}
	if err := state.FinishJournal(a.layout); err != nil {
		return nil, err
	}
	return &protocol.ApplyResult{Completed: len(steps)}, nil
}

func (a *Agent) rollBack(ctx context.Context, j *state.Journal, rollback []protocol.Request, emit progressFunc) (*protocol.ApplyResult, error) {
	j.RollingBack = true
	if err := j.Save(a.layout); err != nil {
		return nil, err
	}
	ops := a.ops()
	for i := j.RolledBack; i < len(rollback); i++ {
		step := rollback[i]
		emit("", protocol.StepProgress{Step: i, Op: step.Op, Phase: "rollback"})
		if _, err := a.run(ctx, step, ops, emit); err != nil {
			return nil, fmt.Errorf("rollback step %d (%s): %w", i, step.Op, err)
		}
		j.RolledBack = i + 1
		if err := j.Save(a.layout); err != nil {
			return nil, err
		}
	}
	if err := state.FinishJournal(a.layout); err != nil {
		return nil, err
	}
	return &protocol.ApplyResult{Completed: j.RolledBack, RolledBack: true}, nil
}

// recoverJournal deals with an apply that a dead agent left half done:
// it completes the remaining steps or rolls back, as the apply asked.
// Then, journal or not, services that a dead agent stopped because they
// depend on one that runs again are started (see restoreDependents): a
// rollback need not restart them itself, and neither must an apply that
// was not journaled.
func (a *Agent) recoverJournal(ctx context.Context, emit progressFunc) (*protocol.ApplyResult, error) {
	j, err := state.LoadJournal(a.layout)
	if err != nil {
		return nil, err
	}
	if j == nil {
		a.restoreDependents(emit)
		return nil, nil
	}
	var res *protocol.ApplyResult
	if j.RollingBack || j.OnInterrupt == protocol.OnInterruptRollback {
		emit(fmt.Sprintf("rolling back interrupted apply %s (%d of %d steps had completed)", j.ID, j.Done, len(j.Steps)), nil)
		res, err = a.rollBack(ctx, j, j.Rollback, emit)
	} else {
		emit(fmt.Sprintf("completing interrupted apply %s from step %d of %d", j.ID, j.Done, len(j.Steps)), nil)
		res, err = a.runJournal(ctx, j, j.Steps, j.Rollback, emit)
	}
	if err != nil {
		return nil, err
	}
	a.restoreDependents(emit)
	return res, nil
}

func (a *Agent) opRecoverJournal(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	if err := protocol.DecodeArgs(req, &struct{}{}); err != nil {
		return nil, badArgs(err)
	}
	// Taking the lock recovers; a session that already held it may still
	// have a journal if an earlier recovery failed, so try again.
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	res, err := a.recoverJournal(ctx, emit)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return map[string]bool{"pending": false}, nil
	}
	return res, nil
}

// redactSteps removes secrets from steps before they are journaled:
// account passwords, and environment values, which become names and value
// hashes (env_sha256). A recovered step then leaves the stored password
// and the environment in place unchanged (see ServiceSpec.KeepsEnv).
// Args that do not parse as an object are dropped rather than journaled as
// they are, since they might hold either; such a step fails on replay as it
// would have failed when run.
func redactSteps(steps []protocol.Request) []protocol.Request {
	out := make([]protocol.Request, len(steps))
	for i, s := range steps {
		out[i] = s
		if s.Op != protocol.OpEnsureService {
			continue
		}
		var spec map[string]json.RawMessage
		if json.Unmarshal(s.Args, &spec) != nil {
			out[i].Args = json.RawMessage(`"redacted: not an object"`)
			continue
		}
		changed := false
		var acct map[string]json.RawMessage
		if raw, ok := spec["account"]; ok && json.Unmarshal(raw, &acct) == nil {
			if _, has := acct["password"]; has {
				delete(acct, "password")
				spec["account"], _ = json.Marshal(acct)
				changed = true
			}
		} else if ok {
			delete(spec, "account")
			changed = true
		}
		if raw, ok := spec["env"]; ok {
			var env map[string]string
			delete(spec, "env")
			if json.Unmarshal(raw, &env) == nil {
				if h := protocol.HashEnv(env); h != nil {
					spec["env_sha256"], _ = json.Marshal(h)
				} else {
					delete(spec, "env_sha256")
				}
			}
			changed = true
		}
		if changed {
			out[i].Args, _ = json.Marshal(spec)
		}
	}
	return out
}
