package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/state"
)

// resourceKind is what the agent knows of one kind of resource: how to
// check a release of it, switch to one and remove it. The release ops
// and the journal are the same for every kind; services are built in,
// other kinds are Handlers (see RegisterKind).
type resourceKind interface {
	// check validates a whole release (secrets filled in) and returns
	// the record to store: its redacted spec, file contents by hash and
	// secrets.
	check(a *Agent, name string, spec json.RawMessage, secrets map[string]string) (releases.Record, error)
	// current is the release the resource runs now ("" for none), and
	// whether its process runs, which an interrupted activation restores.
	current(a *Agent, st *state.State, name string) (id string, running bool, err error)
	// switchTo makes the resource run release id, whole, with effect.
	switchTo(a *Agent, j *state.Journal, id string, rec releases.Record, effect string, emit progressFunc) (*protocol.ActivateResult, error)
	// landed reports whether an interrupted activation got to its end.
	landed(a *Agent, j *state.Journal) bool
	// neverCreated reports whether a new resource whose activation failed
	// left nothing on the host to stop.
	neverCreated(a *Agent, name string) bool
	// remove deletes the resource and what gsd keeps of it, and reports
	// whether there was anything to delete.
	remove(a *Agent, name string, timeoutMS int64, emit progressFunc) (bool, error)
	// forgetFailedFirst drops the record of a resource whose first
	// activation failed and was stopped, when that record would make the
	// next plan take it for in place; the next apply then makes it again.
	// It reports whether it forgot.
	forgetFailedFirst(a *Agent, name string) (bool, error)
}

// undoTarget is the release a failed activation returns to, and how: the
// release before, restarted; or, with none other (a first activation, or
// one of the release already current), the new release, stopped.
func undoTarget(j *state.Journal) (target, effect string) {
	if j.From == "" || j.From == j.To {
		return j.To, protocol.EffectStop
	}
	return j.From, protocol.EffectRestart
}

func (a *Agent) kinds() map[string]resourceKind {
	out := map[string]resourceKind{protocol.KindService: serviceKind{}}
	for k, h := range a.handlers {
		out[k] = handlerKind{kind: k, h: h}
	}
	return out
}

func (a *Agent) kind(name string) (resourceKind, error) {
	k, ok := a.kinds()[name]
	if !ok {
		return nil, failf(protocol.CodeUnsupported, "this agent (%s) knows no resource kind %q", Version, name)
	}
	return k, nil
}

// kindArgs decodes a release op's args into args and checks the kind
// and the resource name they give, before anything is touched.
func (a *Agent) kindArgs(req protocol.Request, args any, kindAndName func() (string, string)) (resourceKind, error) {
	if err := protocol.DecodeArgs(req, args); err != nil {
		return nil, badArgs(err)
	}
	kind, name := kindAndName()
	k, err := a.kind(kind)
	if err != nil {
		return nil, err
	}
	return k, protocol.ValidateServiceName(name)
}

func (a *Agent) opStageRelease(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.StageReleaseArgs
	k, err := a.kindArgs(req, &args, func() (string, string) { return args.Kind, args.Name })
	if err != nil {
		return nil, err
	}
	rec, err := k.check(a, args.Name, args.Spec, args.Secrets)
	if err != nil {
		return nil, err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	id, existed, err := a.releases.Put(rec)
	if err != nil {
		return nil, fmt.Errorf("%s %s: storing the release: %w", args.Kind, args.Name, err)
	}
	return protocol.StageReleaseResult{ID: id, AlreadyPresent: existed}, nil
}

func validEffect(e string) bool {
	switch e {
	case protocol.EffectRestart, protocol.EffectReload, protocol.EffectStart, protocol.EffectNone, protocol.EffectStop:
		return true
	}
	return false
}

func (a *Agent) opActivate(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.ActivateArgs
	k, err := a.kindArgs(req, &args, func() (string, string) { return args.Kind, args.Name })
	if err != nil {
		return nil, err
	}
	if !releases.ValidID(args.Release) {
		return nil, failf(protocol.CodeBadRequest, "activate: %q is not a release id", args.Release)
	}
	if !validEffect(args.Effect) {
		return nil, failf(protocol.CodeBadRequest, "activate: effect %q must be restart, reload, start, none or stop", args.Effect)
	}
	switch args.OnInterrupt {
	case "":
		args.OnInterrupt = protocol.OnFailureRollback
	case protocol.OnFailureRollback, protocol.OnFailureComplete:
	default:
		return nil, failf(protocol.CodeBadRequest, "activate: on_interrupt %q must be rollback or complete", args.OnInterrupt)
	}
	if args.TimeoutMS < 0 {
		return nil, failf(protocol.CodeBadRequest, "activate: negative timeout")
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	if old, err := state.LoadJournal(a.layout); err != nil {
		return nil, err
	} else if old != nil {
		return nil, failf(protocol.CodeJournalPending, "activation %s of %s %s is unfinished; run recover_journal first", old.ID, old.Kind, old.Name)
	}
	rec, err := a.releases.Get(args.Release)
	if errors.Is(err, releases.ErrNotFound) {
		return nil, failf(protocol.CodeNotFound, "%s %s: %v; stage it first", args.Kind, args.Name, err)
	}
	if err != nil {
		return nil, err
	}
	if rec.Kind != args.Kind || rec.Name != args.Name {
		return nil, failf(protocol.CodeBadRequest, "activate: release %s is one of %s %s, not of %s %s", args.Release, rec.Kind, rec.Name, args.Kind, args.Name)
	}
	// The bytes to run are checked whole before anything is touched.
	for sha := range a.releaseArtifacts(args.Release) {
		if _, err := a.verifiedArtifact(args.Name, sha); err != nil {
			return nil, err
		}
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	from, running, err := k.current(a, st, args.Name)
	if err != nil {
		return nil, err
	}
	j := &state.Journal{ID: req.ID, Started: time.Now().UTC(), Kind: args.Kind, Name: args.Name, To: args.Release, From: from,
		Effect: args.Effect, OnInterrupt: args.OnInterrupt, WasRunning: running, By: a.operator()}
	if err := j.Save(a.layout); err != nil {
		return nil, err
	}
	a.timeout = time.Duration(args.TimeoutMS) * time.Millisecond
	defer func() { a.timeout = 0 }()
	res, err := k.switchTo(a, j, args.Release, rec, args.Effect, emit)
	if err == nil {
		return res, state.FinishJournal(a.layout)
	}
	var oe *opError
	if errors.As(err, &oe) && oe.code == protocol.CodeUnmanaged {
		// Refused before anything was touched.
		return nil, errors.Join(err, state.FinishJournal(a.layout))
	}
	return nil, a.revert(j, k, err, emit)
}

// revert returns a resource whose activation failed to the release it ran
// before, whole; a new resource (no release before) is stopped. The
// journal stays when that fails too, so the next agent tries again.
func (a *Agent) revert(j *state.Journal, k resourceKind, cause error, emit progressFunc) error {
	j.RollingBack = true
	if err := j.Save(a.layout); err != nil {
		return errors.Join(cause, err)
	}
	target, effect := undoTarget(j)
	if effect == protocol.EffectStop {
		// Nothing else to return to: the new release stays, stopped; or,
		// if the service was never created, there is nothing to stop.
		if k.neverCreated(a, j.Name) {
			if err := state.FinishJournal(a.layout); err != nil {
				return errors.Join(cause, err)
			}
			return &opError{code: protocol.CodeActivationFailed, err: fmt.Errorf("%s %s: activating %s failed: %w; the service was not created", j.Kind, j.Name, j.To, cause)}
		}
	}
	emit(fmt.Sprintf("%s %s: activating %s failed (%v); returning to %s", j.Kind, j.Name, j.To, cause, target), nil)
	what, err := a.returnFrom(j, k, emit)
	if err != nil {
		return fmt.Errorf("%s %s: activating %s failed: %w; returning to %s failed too: %v (the next apply tries again)", j.Kind, j.Name, j.To, cause, target, err)
	}
	if err := state.FinishJournal(a.layout); err != nil {
		return errors.Join(cause, err)
	}
	return &opError{code: protocol.CodeActivationFailed, err: fmt.Errorf("%s %s: activating %s failed: %w; it %s", j.Kind, j.Name, j.To, cause, what)}
}

// returnFrom switches a resource whose activation failed (or was cut off
// while it was being undone) to undoTarget's release, and says what it
// is now. A first activation of a kind that forgets it (see
// forgetFailedFirst) ends even when the stop fails too, so that a
// resource Windows refuses outright (a task whose password is wrong)
// cannot hold the host's journal for ever. An error keeps the journal.
func (a *Agent) returnFrom(j *state.Journal, k resourceKind, emit progressFunc) (string, error) {
	target, effect := undoTarget(j)
	rec, err := a.releases.Get(target)
	if err == nil {
		_, err = k.switchTo(a, j, target, rec, effect, emit)
	}
	if j.From == "" {
		forgot, ferr := k.forgetFailedFirst(a, j.Name)
		switch {
		case ferr != nil:
			return "", errors.Join(err, ferr)
		case forgot && err != nil:
			return fmt.Sprintf("could not be disabled either (%v); gsd forgets it, and the next apply makes it again", err), nil
		case forgot:
			return "is disabled, and the next apply makes it again (it had no release before)", nil
		}
	}
	switch {
	case err != nil:
		return "", err
	case effect == protocol.EffectStop && j.From == "":
		return "is stopped (it had no release before)", nil
	case effect == protocol.EffectStop:
		return "is stopped", nil
	}
	return "is back on " + target, nil
}

// goingAway reports whether a service is marked for deletion: Windows
// says so, or the agent deleted it and it is still there.
func (a *Agent) goingAway(name string, obs Observed) bool {
	if obs.MarkedForDelete {
		return true
	}
	st, err := a.loadState()
	return err == nil && obs.Installed && st.Deleting[strings.ToLower(name)]
}

// neverCreated: the service manager has no such service (or one going
// away) and gsd holds no release of it.
// forgetFailedFirst keeps a service's record: its new release stays,
// stopped, with its logs to look at, and the plan sees it is not running.
func (serviceKind) forgetFailedFirst(*Agent, string) (bool, error) { return false, nil }

func (serviceKind) neverCreated(a *Agent, name string) bool {
	obs, err := a.opts.Services.Query(name)
	if err != nil || (obs.Installed && !a.goingAway(name, obs)) {
		return false
	}
	st, err := a.loadState()
	return err == nil && !managesService(st, name)
}

// operator is who the lock was taken for, recorded with each activation.
func (a *Agent) operator() string {
	if a.lock != nil {
		if a.lock.Holder.Operator != "" {
			return a.lock.Holder.Operator
		}
		return a.lock.Holder.User
	}
	return ""
}

// recoverJournal deals with an activation that a dead agent left half
// done: it finishes it or returns to the release before, as the
// activation asked, whole. Then, journal or not, services that a dead
// agent stopped because they depend on one that runs again are started
// (see restoreDependents).
func (a *Agent) recoverJournal(_ context.Context, emit progressFunc) (*state.Journal, error) {
	j, err := state.LoadJournal(a.layout)
	if err != nil {
		return nil, err
	}
	if j == nil {
		a.restoreDependents(emit)
		return nil, nil
	}
	k, err := a.kind(j.Kind)
	if err != nil {
		return nil, err
	}
	if k.landed(a, j) {
		// The agent died after the switch was whole and the service ran
		// again: only the journal is left to clear.
		emit(fmt.Sprintf("the activation of %s on %s %s had completed before its agent died", j.To, j.Kind, j.Name), nil)
		if err := state.FinishJournal(a.layout); err != nil {
			return nil, err
		}
		a.restoreDependents(emit)
		return j, nil
	}
	if j.RollingBack || (j.OnInterrupt == protocol.OnFailureRollback && j.From != "" && j.From != j.To) {
		// The same return as the dead agent's: to the release before,
		// or, with none, the new one stopped, never started again.
		target, _ := undoTarget(j)
		emit(fmt.Sprintf("returning %s %s to %s: an agent died while activating %s", j.Kind, j.Name, target, j.To), nil)
		what, err := a.returnFrom(j, k, emit)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", j.Kind, j.Name, err)
		}
		emit(fmt.Sprintf("%s %s %s", j.Kind, j.Name, what), nil)
	} else {
		emit(fmt.Sprintf("finishing the activation of %s on %s %s that an agent left unfinished", j.To, j.Kind, j.Name), nil)
		rec, err := a.releases.Get(j.To)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", j.Kind, j.Name, err)
		}
		if _, err := k.switchTo(a, j, j.To, rec, j.Effect, emit); err != nil {
			return nil, fmt.Errorf("%s %s: %w", j.Kind, j.Name, err)
		}
	}
	if err := state.FinishJournal(a.layout); err != nil {
		return nil, err
	}
	a.restoreDependents(emit)
	return j, nil
}

// landed reports whether an interrupted activation of a service got to
// its end: its release is current and the service runs if it ran before.
func (serviceKind) landed(a *Agent, j *state.Journal) bool {
	if j.RollingBack {
		return false
	}
	st, err := a.loadState()
	if err != nil {
		return false
	}
	svc := st.Services[j.Name]
	if svc == nil || svc.Current() == nil || svc.Current().ID != j.To {
		return false
	}
	obs, err := a.opts.Services.Query(j.Name)
	if err != nil || !obs.Installed {
		return false
	}
	return isUp(obs.Status.State) || (!j.WasRunning && j.Effect != protocol.EffectStart)
}

func (a *Agent) opRecoverJournal(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	if err := protocol.DecodeArgs(req, &struct{}{}); err != nil {
		return nil, badArgs(err)
	}
	// Taking the lock recovers, and then that is what this op did; a
	// session that already held it may still have a journal if an earlier
	// recovery failed, so try again.
	held := a.lock != nil
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	if !held && a.lockRecovered != nil {
		return a.lockRecovered.Summary(), nil
	}
	j, err := a.recoverJournal(ctx, emit)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return map[string]bool{"pending": false}, nil
	}
	return j.Summary(), nil
}

// serviceKind is the service resource: the SCM entry, its binary, its
// settings and its managed files.
type serviceKind struct{}

func (serviceKind) check(a *Agent, name string, raw json.RawMessage, secrets map[string]string) (releases.Record, error) {
	var spec protocol.ServiceSpec
	if err := protocol.DecodeArgs(protocol.Request{Op: protocol.OpStageRelease, Args: raw}, &spec); err != nil {
		return releases.Record{}, badArgs(err)
	}
	if spec.Name != name {
		return releases.Record{}, failf(protocol.CodeBadRequest, "stage_release: the spec names service %q, not %q", spec.Name, name)
	}
	full, err := spec.WithSecrets(secrets)
	if err != nil {
		return releases.Record{}, failf(protocol.CodeBadRequest, "service %s: %v", name, err)
	}
	if err := validateSpec(&full); err != nil {
		return releases.Record{}, err
	}
	if _, err := a.store.Find(full.Artifact); err != nil {
		return releases.Record{}, failf(protocol.CodeNotFound, "service %s: %v; stage it first", name, err)
	}
	if err := a.checkManagedAccount("service "+name, full.Account.Name); err != nil {
		return releases.Record{}, err
	}
	rec := releases.Record{Kind: protocol.KindService, Name: name, Files: map[string][]byte{}, Secrets: full.Secrets()}
	for _, f := range full.Files {
		if !f.Sensitive {
			rec.Files[f.SHA256] = f.Content
		}
	}
	if rec.Spec, err = json.Marshal(full.Redacted()); err != nil {
		return releases.Record{}, err
	}
	return rec, nil
}

// loadService turns a stored release back into the whole spec.
func loadService(rec releases.Record) (protocol.ServiceSpec, error) {
	var spec protocol.ServiceSpec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return spec, err
	}
	for i, f := range spec.Files {
		if !f.Sensitive {
			spec.Files[i].Content = rec.Files[f.SHA256]
		}
	}
	full, err := spec.WithSecrets(rec.Secrets)
	if err != nil {
		return full, err
	}
	for _, f := range full.Files {
		if protocol.SHA256Hex(f.Content) != f.SHA256 {
			return full, fmt.Errorf("file %s of the release does not match its SHA-256", f.Name)
		}
	}
	return full, nil
}

func (serviceKind) current(a *Agent, st *state.State, name string) (string, bool, error) {
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		return "", false, err
	}
	var id string
	if svc := st.Services[name]; svc != nil && svc.Current() != nil {
		id = svc.Current().ID
	}
	return id, obs.Installed && isUp(obs.Status.State), nil
}

func (serviceKind) remove(a *Agent, name string, timeoutMS int64, emit progressFunc) (bool, error) {
	return a.deleteService(name, timeoutMS, true, emit)
}

func (serviceKind) switchTo(a *Agent, j *state.Journal, id string, rec releases.Record, effect string, emit progressFunc) (*protocol.ActivateResult, error) {
	spec, err := loadService(rec)
	if err != nil {
		return nil, fmt.Errorf("service %s: release %s: %w", j.Name, id, err)
	}
	return a.switchService(j, id, spec, effect, emit)
}

// switchService makes a service run one release, whole: it stops the
// service when the effect needs it, writes the release's files where they
// belong (removing those the release no longer has), reconfigures the
// service manager (binary, arguments, account, environment, start type,
// dependencies, names), its failure actions and its folders' access, and
// records the release as current before it starts the service again.
// Every part writes the release's own value, so running it again, after
// an agent died half way, ends in the same place.
func (a *Agent) switchService(j *state.Journal, id string, spec protocol.ServiceSpec, effect string, emit progressFunc) (*protocol.ActivateResult, error) {
	name := spec.Name
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		return nil, err
	}
	if a.goingAway(name, obs) {
		// Going away: what is created next is new (configureService
		// waits for it to go).
		obs = Observed{}
	}
	if st.Deleting[strings.ToLower(name)] {
		delete(st.Deleting, strings.ToLower(name))
	}
	if obs.Installed && !managesService(st, name) && !spec.Adopt {
		return nil, failf(protocol.CodeUnmanaged, "service %s exists on this host and was not created by gsd; gsd leaves it alone unless its service block says adopt = true", name)
	}
	binary, err := a.store.Find(spec.Artifact)
	if err != nil {
		return nil, failf(protocol.CodeNotFound, "service %s: %v", name, err)
	}
	svc := serviceEntry(st, name)
	res := &protocol.ActivateResult{To: id}
	if cur := svc.Current(); cur != nil {
		res.From = cur.ID
	}
	running := obs.Installed && isUp(obs.Status.State)
	if running && (effect == protocol.EffectRestart || effect == protocol.EffectStop) {
		emit(fmt.Sprintf("stopping %s", name), nil)
		if err := a.stopService(st, name, a.stopTimeout(svc, a.timeout.Milliseconds()), emit); err != nil {
			return nil, fmt.Errorf("service %s: stop: %w", name, err)
		}
		running = false
	}
	if err := a.writeFiles(svc, spec, emit); err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	cfg, err := a.installConfig(spec, binary)
	if err != nil {
		return nil, err
	}
	if gap, err := a.ensureLogonRight(st, spec.Account.Name); err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	} else if gap != "" {
		emit(fmt.Sprintf("%s: the right of %s to log on as a service cannot be checked on this host: %s", name, spec.Account.Name, gap), nil)
	}
	gaps, err := a.configureService(name, spec, cfg, obs.Installed, emit)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	accessGaps, err := a.grantAccess(spec, binary)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	for _, gap := range accessGaps {
		emit(fmt.Sprintf("%s: %s", name, gap), nil)
	}
	recovery := spec.Recovery
	if recovery == nil && obs.Installed && !recoveryKnownEmpty(obs, svc) {
		// No recovery block means no failure actions: gsd manages the
		// whole service, so actions it set before, or that an adopted
		// service came with, are cleared.
		recovery = &protocol.Recovery{}
	}
	if recovery != nil {
		written := *recovery
		if reboots(written) {
			written.RebootMessage = rebootMessage(name)
		}
		var rgaps map[string]string
		err := a.withRecoveryPrivileges(written, func() (err error) {
			rgaps, err = a.opts.Services.SetRecovery(name, written)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("service %s: recovery: %w", name, err)
		}
		gaps = mergeGaps(gaps, rgaps)
	}
	if svc.Password, err = passwordRecord(svc, !obs.Installed, spec.Account); err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	stored := spec.Redacted()
	prevRecorded := svc.Recorded
	svc.Recorded = recordGaps(stored, recovery, gaps)
	if recovery == nil && obs.Recovery == nil && prevRecorded != nil && prevRecorded.Recovery != nil {
		// Left alone as known empty on a host that cannot report it:
		// the record is still what the host has.
		if svc.Recorded == nil {
			svc.Recorded = &state.Recorded{}
		}
		svc.Recorded.Recovery = prevRecorded.Recovery
	}
	res.Recorded = gaps
	if cur := svc.Current(); cur == nil || cur.ID != id {
		rel := protocol.Release{ID: id, Artifact: spec.Artifact, Version: spec.Version, Path: binary, Activated: time.Now().UTC(), By: j.By}
		if cur != nil {
			rel.Changes = protocol.SpecChanges(svc.Spec, stored)
		}
		if kept := svc.Find(id); kept != nil && len(rel.Changes) == 0 {
			rel.Changes = kept.Changes
		}
		dropped := svc.Activate(rel, st.KeepReleases)
		res.Changed = true
		defer a.prune(dropped, emit)
	}
	svc.Spec = stored
	a.releaseLogonRights(st, emit)
	if err := st.Save(a.layout); err != nil {
		return nil, err
	}
	for setting, why := range gaps {
		emit(fmt.Sprintf("%s: %s written; %s, kept in agent state", name, setting, why), nil)
	}
	start := effect != protocol.EffectStop && (j.WasRunning || effect == protocol.EffectStart)
	switch {
	case start && !running:
		emit(fmt.Sprintf("starting %s", name), nil)
		if err := a.opts.Services.Start(name, a.startTimeout()); err != nil {
			return nil, fmt.Errorf("service %s: start: %w", name, explainSCM(name, spec, err))
		}
		running = true
	case effect == protocol.EffectReload && running:
		emit(fmt.Sprintf("reloading %s", name), nil)
		if err := a.opts.Services.ParamChange(name); err != nil {
			return nil, fmt.Errorf("service %s: reload: %w", name, err)
		}
	}
	if running {
		// A dependent that does not start again is reported, not undone:
		// this service runs its release whole.
		if err := a.startDependents(st, name, emit); err != nil {
			emit(err.Error(), nil)
		}
	}
	res.Running = running
	return res, nil
}

func (a *Agent) startTimeout() time.Duration {
	if a.timeout > 0 {
		return a.timeout
	}
	return defaultStartWait
}

// filePath is where a managed file of service lives on this host.
func (a *Agent) filePath(service string, f protocol.FileSpec) string {
	if f.Path != "" {
		return a.hostPath(f.Path)
	}
	return filepath.Join(a.layout.FilesDir(service), filepath.FromSlash(strings.ReplaceAll(f.Name, `\`, "/")))
}

// writeFiles puts a release's files in place, each written atomically
// and only when its bytes differ, and removes files of the release before
// that this one no longer has.
func (a *Agent) writeFiles(svc *state.Service, spec protocol.ServiceSpec, emit progressFunc) error {
	keep := map[string]bool{}
	files := map[string]string{}
	for _, f := range spec.Files {
		path := a.filePath(spec.Name, f)
		keep[strings.ToLower(path)] = true
		files[f.Name] = f.SHA256
		if old, err := artifacts.FileSHA256(path); err == nil && old == f.SHA256 {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(path, f.Content); err != nil {
			return fmt.Errorf("file %s: %w", f.Name, err)
		}
	}
	var old []string
	for _, f := range svc.Spec.Files {
		old = append(old, a.filePath(spec.Name, f))
	}
	for n := range svc.Files {
		old = append(old, a.filePath(spec.Name, protocol.FileSpec{Name: n}))
	}
	for _, path := range old {
		if keep[strings.ToLower(path)] {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			emit(fmt.Sprintf("could not remove %s, which the release no longer has: %v", path, err), nil)
		}
	}
	svc.Files = files
	if len(files) == 0 {
		svc.Files = nil
	}
	return nil
}

// logDir is where a wrapped service's output goes: its log block's
// folder, or its own under the root.
func (a *Agent) logDir(svc *state.Service, name string) string {
	if svc != nil && svc.Spec.Wrapper != nil && svc.Spec.Wrapper.LogDir != "" {
		return a.hostPath(svc.Spec.Wrapper.LogDir)
	}
	return a.layout.LogDir(name)
}

// hostPath maps an absolute Windows path to this host's file system: as
// it is on Windows; under the root's drive_<letter> folder elsewhere (the
// tests), so a test never writes outside its own folder.
func (a *Agent) hostPath(p string) string {
	if a.opts.HostPath != nil {
		return a.opts.HostPath(p)
	}
	return hostPath(a.layout.Root, p)
}

// prune deletes what activations left behind, with the lock held: the
// releases that fell out of history, releases staged but never activated
// for longer than artifactPruneGrace, and artifacts no kept release uses
// (see pruneArtifacts). What the journal names is kept.
func (a *Agent) prune(dropped []protocol.Release, emit progressFunc) {
	st, err := a.loadState()
	if err != nil {
		return
	}
	keep := st.ReferencedReleases()
	if j, err := state.LoadJournal(a.layout); err != nil {
		return
	} else if j != nil {
		keep[j.From], keep[j.To] = true, true
	}
	remove := map[string]bool{}
	for _, r := range dropped {
		remove[r.ID] = true
	}
	ids, err := a.releases.IDs()
	if err != nil {
		emit(fmt.Sprintf("could not list releases to prune: %v", err), nil)
	}
	for _, id := range ids {
		if staged, err := a.releases.StagedAt(id); err == nil && time.Since(staged) > artifactPruneGrace {
			remove[id] = true
		}
	}
	for id := range remove {
		if keep[id] || id == "" {
			continue
		}
		if err := a.releases.Remove(id); err != nil {
			emit(fmt.Sprintf("could not remove old release %s (%v); will retry at the next activation", id, err), nil)
		}
	}
	a.pruneArtifacts(st, dropped, emit)
}

// releaseArtifacts are the artifacts of the given releases.
func (a *Agent) releaseArtifacts(ids ...string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			continue
		}
		raw, err := a.releases.Spec(id)
		if err != nil {
			continue
		}
		var ref struct {
			Artifact string `json:"artifact"`
		}
		if json.Unmarshal(raw, &ref) == nil && ref.Artifact != "" {
			out[ref.Artifact] = true
		}
	}
	return out
}
