package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
)

func badArgs(err error) error { return failf(protocol.CodeBadRequest, "%v", err) }

// fileTarget checks a managed file's service and name before anything is
// touched, takes the host lock, and returns the file's key in state (with
// forward slashes) and its path under the service's files directory.
func (a *Agent) fileTarget(ctx context.Context, emit progressFunc, service, name string) (key, path string, err error) {
	if err := protocol.ValidateServiceName(service); err != nil {
		return "", "", err
	}
	if err := protocol.ValidateRelPath(name); err != nil {
		return "", "", err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return "", "", err
	}
	key = filepath.ToSlash(strings.ReplaceAll(name, `\`, "/"))
	return key, filepath.Join(a.layout.FilesDir(service), filepath.FromSlash(key)), nil
}

func (a *Agent) opWriteFile(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.WriteFileArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	key, path, err := a.fileTarget(ctx, emit, args.Service, args.Name)
	if err != nil {
		return nil, err
	}
	sum := sha256Hex(args.Content)
	res := protocol.FileResult{Path: path, SHA256: sum}
	if old, err := artifacts.FileSHA256(path); err != nil || old != sum {
		if err := atomicfile.WriteFile(path, args.Content); err != nil {
			return nil, err
		}
		res.Changed = true
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	svc := serviceEntry(st, args.Service)
	if svc.Files == nil {
		svc.Files = map[string]string{}
	}
	if svc.Files[key] != sum {
		svc.Files[key] = sum
		if err := st.Save(a.layout); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (a *Agent) opDeleteFile(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.DeleteFileArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	key, path, err := a.fileTarget(ctx, emit, args.Service, args.Name)
	if err != nil {
		return nil, err
	}
	err = os.Remove(path)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	if svc := st.Services[args.Service]; svc != nil {
		if _, ok := svc.Files[key]; ok {
			delete(svc.Files, key)
			if err := st.Save(a.layout); err != nil {
				return nil, err
			}
		}
	}
	return map[string]bool{"existed": existed}, nil
}

// managesService reports whether gsd installed the service: it has a
// release. (A managed file alone does not make gsd the service's owner.)
func managesService(st *state.State, name string) bool {
	svc := st.Services[name]
	return svc != nil && len(svc.Releases) > 0
}

func serviceEntry(st *state.State, name string) *state.Service {
	svc := st.Services[name]
	if svc == nil {
		svc = &state.Service{Spec: protocol.ServiceSpec{Name: name}}
		st.Services[name] = svc
	}
	return svc
}

// validateSpec refuses a spec before anything is touched.
func validateSpec(spec *protocol.ServiceSpec) error {
	if err := protocol.ValidateServiceName(spec.Name); err != nil {
		return err
	}
	if spec.Mode == "" {
		spec.Mode = protocol.ModeNative
	}
	if spec.Mode != protocol.ModeNative && spec.Mode != protocol.ModeWrapped {
		return failf(protocol.CodeBadRequest, "service %s: mode %q must be native or wrapped", spec.Name, spec.Mode)
	}
	if spec.Start == "" {
		spec.Start = protocol.StartAuto
	}
	switch spec.Start {
	case protocol.StartAuto, protocol.StartDelayed, protocol.StartManual, protocol.StartDisabled:
	default:
		return failf(protocol.CodeBadRequest, "service %s: start %q must be auto, delayed, manual or disabled", spec.Name, spec.Start)
	}
	if err := protocol.ValidateSHA256(spec.Artifact); err != nil {
		return err
	}
	for _, arg := range spec.Args {
		if strings.ContainsRune(arg, 0) {
			return failf(protocol.CodeBadRequest, "service %s: an argument contains NUL", spec.Name)
		}
	}
	for k, v := range spec.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return failf(protocol.CodeBadRequest, "service %s: environment variable %q is not valid", spec.Name, k)
		}
	}
	for _, d := range spec.DependsOn {
		if d == "" || strings.ContainsAny(d, "/\\\x00") {
			return failf(protocol.CodeBadRequest, "service %s: dependency %q is not a service name", spec.Name, d)
		}
	}
	if spec.Recovery != nil {
		if err := validateRecovery(*spec.Recovery); err != nil {
			return err
		}
	}
	if spec.StopTimeout < 0 {
		return failf(protocol.CodeBadRequest, "service %s: negative stop timeout", spec.Name)
	}
	return nil
}

func validateRecovery(r protocol.Recovery) error {
	for _, act := range r.Actions {
		switch act.Type {
		case "restart", "reboot", "run", "none":
		default:
			return failf(protocol.CodeBadRequest, "recovery action %q must be restart, reboot, run or none", act.Type)
		}
		if act.DelayMS < 0 {
			return failf(protocol.CodeBadRequest, "recovery action delay is negative")
		}
	}
	if r.ResetAfterMS < 0 {
		return failf(protocol.CodeBadRequest, "recovery reset period is negative")
	}
	return nil
}

// installConfig turns a spec into SCM settings. Wrapped services run the
// service host, which reads wrapper.json; that file is written here too.
// With spec.KeepsEnv() (no values, only hashes: a release switch or a
// replayed journal step) the environment in place is left as it is, since
// the agent keeps values nowhere but in wrapper.json and the registry.
func (a *Agent) installConfig(spec protocol.ServiceSpec, binary string) (InstallConfig, error) {
	cfg := InstallConfig{
		BinaryPath:  binary,
		Args:        spec.Args,
		DisplayName: spec.DisplayName,
		Description: spec.Description,
		Start:       spec.Start,
		Account:     spec.Account,
		DependsOn:   spec.DependsOn,
		Env:         spec.Env,
		KeepEnv:     spec.KeepsEnv(),
	}
	if spec.Mode != protocol.ModeWrapped {
		return cfg, nil
	}
	if a.opts.ServiceHost == "" {
		return InstallConfig{}, failf(protocol.CodeUnsupported, "wrapped mode needs the agent's own path as service host")
	}
	wc := servicehost.Config{
		Service:       spec.Name,
		Program:       binary,
		Args:          spec.Args,
		Dir:           a.layout.FilesDir(spec.Name),
		Env:           spec.Env,
		LogDir:        a.layout.LogDir(spec.Name),
		StopTimeoutMS: spec.StopTimeout,
		StatusFile:    a.layout.WrapperStatus(spec.Name),
	}
	if w := spec.Wrapper; w != nil {
		wc.LogMaxBytes, wc.LogKeep = w.LogMaxBytes, w.LogKeep
		wc.BackoffInitialMS, wc.BackoffMaxMS = w.BackoffInitialMS, w.BackoffMaxMS
	}
	if spec.KeepsEnv() {
		// wrapper.json is the only place the values live.
		if old, err := servicehost.Load(a.layout.WrapperConfig(spec.Name)); err == nil {
			wc.Env = old.Env
		}
	}
	if err := os.MkdirAll(wc.Dir, 0o755); err != nil {
		return InstallConfig{}, err
	}
	if err := servicehost.Save(a.layout.WrapperConfig(spec.Name), wc); err != nil {
		return InstallConfig{}, err
	}
	cfg.BinaryPath = a.opts.ServiceHost
	cfg.Args = []string{"service-host", "-root", a.layout.Root, "-service", spec.Name}
	cfg.Env, cfg.KeepEnv = nil, false
	return cfg, nil
}

type ensureResult struct {
	Created bool `json:"created"`
	// Changed is false when the spec equals the last applied one and no
	// password was sent, i.e. the call was a no-op.
	Changed        bool              `json:"changed"`
	ReleaseChanged bool              `json:"release_changed"`
	Running        bool              `json:"running"`
	Recorded       map[string]string `json:"recorded_only,omitempty"`
}

func (a *Agent) opEnsureService(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var spec protocol.ServiceSpec
	if err := protocol.DecodeArgs(req, &spec); err != nil {
		return nil, badArgs(err)
	}
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	binary, err := a.store.Find(spec.Artifact)
	if err != nil {
		return nil, failf(protocol.CodeNotFound, "service %s: %v; stage it first", spec.Name, err)
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	cfg, err := a.installConfig(spec, binary)
	if err != nil {
		return nil, err
	}
	obs, err := a.opts.Services.Query(spec.Name)
	if err != nil {
		return nil, err
	}
	// A service gsd installed has a release in state; any other service
	// of that name belongs to someone else and is left alone unless the
	// configuration says to adopt it.
	if obs.Installed && !managesService(st, spec.Name) && !spec.Adopt {
		return nil, failf(protocol.CodeUnmanaged, "service %s exists on this host and was not created by gsd; gsd leaves it alone unless its service block says adopt = true", spec.Name)
	}
	var res ensureResult
	var gaps map[string]string
	if obs.Installed {
		gaps, err = a.opts.Services.Reconfigure(spec.Name, cfg)
	} else {
		gaps, err = a.opts.Services.Install(spec.Name, cfg)
		res.Created = err == nil
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	// The service's account may read its files and write its logs; the
	// rest of the root stays administrators' only.
	if gap, err := state.GrantServiceAccess(a.layout, spec.Name, spec.Account.Name); err != nil {
		return nil, fmt.Errorf("service %s: %w", spec.Name, err)
	} else if gap != "" {
		emit(fmt.Sprintf("%s: %s", spec.Name, gap), nil)
	}
	svc := serviceEntry(st, spec.Name)
	recovery := spec.Recovery
	if recovery == nil && obs.Installed && !recoveryKnownEmpty(obs, svc) {
		// No recovery block means no failure actions: gsd manages the
		// whole service, so actions it set before, or that an adopted
		// service came with, are cleared.
		recovery = &protocol.Recovery{}
	}
	if recovery != nil {
		rgaps, err := a.opts.Services.SetRecovery(spec.Name, *recovery)
		if err != nil {
			return nil, fmt.Errorf("service %s: recovery: %w", spec.Name, err)
		}
		gaps = mergeGaps(gaps, rgaps)
	}
	if svc.Password, err = passwordRecord(svc, res.Created, spec.Account); err != nil {
		return nil, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	stored := spec.Redacted()
	if spec.KeepsEnv() {
		// Values are never journaled: a replayed step keeps the
		// environment in place, so record what is really there, and a
		// plan that wanted other values sees the difference.
		stored.EnvSHA256 = a.envInPlace(spec, obs)
		if !reflect.DeepEqual(stored.EnvSHA256, spec.EnvSHA256) {
			emit(fmt.Sprintf("%s: environment values are not journaled; the environment in place was kept and differs from the one requested, apply again", spec.Name), nil)
		}
	}
	res.Changed = res.Created || spec.Account.Password != "" || !reflect.DeepEqual(svc.Spec, stored)
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
	if cur := svc.Current(); cur == nil || cur.Artifact != spec.Artifact {
		res.ReleaseChanged = true
		dropped := svc.Activate(protocol.Release{Artifact: spec.Artifact, Version: spec.Version, Path: binary, Activated: time.Now().UTC()}, st.KeepReleases)
		svc.Spec = stored
		a.pruneArtifacts(st, dropped, emit)
	} else {
		svc.Releases[0].Version = spec.Version
	}
	svc.Spec = stored
	if err := st.Save(a.layout); err != nil {
		return nil, err
	}
	res.Running = obs.Status.State == StateRunning
	for setting, why := range gaps {
		emit(fmt.Sprintf("%s: %s written; %s, kept in agent state", spec.Name, setting, why), nil)
	}
	return res, nil
}

// envInPlace is the environment a service has now, as names and hashes:
// the wrapper's config for wrapped services, the registry for native ones.
func (a *Agent) envInPlace(spec protocol.ServiceSpec, obs Observed) map[string]string {
	if spec.Mode == protocol.ModeWrapped {
		if wc, err := servicehost.Load(a.layout.WrapperConfig(spec.Name)); err == nil {
			return protocol.HashEnv(wc.Env)
		}
		return nil
	}
	return protocol.HashEnv(obs.Env)
}

func mergeGaps(a, b map[string]string) map[string]string {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}

// recoveryKnownEmpty reports whether a service is known to have no failure
// actions: the host says so, or, where it cannot tell (Wine), the agent
// cleared them last time.
func recoveryKnownEmpty(obs Observed, svc *state.Service) bool {
	r := obs.Recovery
	if r == nil && svc.Recorded != nil {
		r = svc.Recorded.Recovery
	}
	return r != nil && len(r.Actions) == 0 && !r.OnNonCrash
}

// passwordRecord is the password hash to keep after an ensure_service that
// succeeded. A password handed to the service manager is recorded salted
// and hashed; an empty one leaves the manager's stored password as it is,
// and so the record, unless the service is new or its account changed.
func passwordRecord(svc *state.Service, created bool, acct protocol.Account) (*protocol.PasswordHash, error) {
	sameAccount := !created && strings.EqualFold(svc.Spec.Account.Name, acct.Name)
	switch {
	case acct.Password != "":
		if sameAccount && svc.Password != nil && svc.Password.Matches(acct.Password) {
			return svc.Password, nil
		}
		h, err := protocol.NewPasswordHash(acct.Password)
		if err != nil {
			return nil, fmt.Errorf("hashing the account password: %w", err)
		}
		return &h, nil
	case sameAccount:
		return svc.Password, nil
	}
	return nil, nil
}

// recordGaps keeps the desired value of every setting the host accepted but
// cannot report, so facts can still show it, marked as coming from state;
// spec is redacted, so the environment is kept as hashes only. recovery is
// what was written, which is empty when a removed block was cleared.
func recordGaps(spec protocol.ServiceSpec, recovery *protocol.Recovery, gaps map[string]string) *state.Recorded {
	if len(gaps) == 0 {
		return nil
	}
	rec := &state.Recorded{}
	if _, ok := gaps["recovery"]; ok && recovery != nil {
		r := *recovery
		rec.Recovery = &r
	}
	if _, ok := gaps["delayed_start"]; ok {
		d := spec.Start == protocol.StartDelayed
		rec.DelayedStart = &d
	}
	if _, ok := gaps["env"]; ok {
		rec.EnvSHA256 = spec.EnvSHA256
	}
	return rec
}

// artifactPruneGrace protects an artifact that no release refers to yet:
// gsd stages every artifact of an apply before it activates any, possibly
// in an earlier session, so a newly staged one is kept for this long.
const artifactPruneGrace = time.Hour

// pruneArtifacts runs after every activation, with the lock held. It
// deletes the artifacts of releases that just fell out of history, and
// every other artifact in the store that no kept release, current one or
// pending journal step refers to and that was staged more than
// artifactPruneGrace ago: ones staged but never used, and ones whose
// removal failed before (Windows refuses while a process runs the file).
// A failed removal is reported and retried at the next activation.
func (a *Agent) pruneArtifacts(st *state.State, dropped []protocol.Release, emit progressFunc) {
	keep, err := a.neededArtifacts(st)
	if err != nil {
		return // cannot tell what the pending apply needs; try next time
	}
	remove := map[string]bool{}
	for _, r := range dropped {
		remove[r.Artifact] = true
	}
	dirs, err := a.store.Dirs()
	if err != nil {
		emit(fmt.Sprintf("could not list artifacts to prune: %v", err), nil)
	}
	for _, sha := range dirs {
		if staged, err := a.store.StagedAt(sha); err == nil && time.Since(staged) > artifactPruneGrace {
			remove[sha] = true
		}
	}
	for sha := range remove {
		if keep[sha] {
			continue
		}
		if err := a.store.Remove(sha); err != nil {
			emit(fmt.Sprintf("could not remove old artifact %s (%v); will retry at the next release", sha, err), nil)
		}
	}
}

// neededArtifacts are those a kept release or a pending journal step uses.
func (a *Agent) neededArtifacts(st *state.State) (map[string]bool, error) {
	keep := st.ReferencedArtifacts()
	j, err := state.LoadJournal(a.layout)
	if err != nil {
		return nil, err
	}
	if j != nil {
		for _, step := range append(append([]protocol.Request(nil), j.Steps...), j.Rollback...) {
			if sha := stepArtifact(step); sha != "" {
				keep[sha] = true
			}
		}
	}
	return keep, nil
}

// stepArtifact is the artifact a journaled step activates, if any.
func stepArtifact(step protocol.Request) string {
	var ref struct {
		Artifact string `json:"artifact"`
	}
	switch step.Op {
	case protocol.OpEnsureService, protocol.OpSwitchRelease:
		if json.Unmarshal(step.Args, &ref) == nil {
			return ref.Artifact
		}
	}
	return ""
}

func (a *Agent) managedService(st *state.State, name string) (*state.Service, error) {
	if err := protocol.ValidateServiceName(name); err != nil {
		return nil, err
	}
	svc := st.Services[name]
	if svc == nil || svc.Spec.Mode == "" {
		return nil, failf(protocol.CodeNotFound, "service %s is not managed by gsd on this host", name)
	}
	return svc, nil
}

func (a *Agent) opDeleteService(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.ServiceRef
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	if err := protocol.ValidateServiceName(args.Service); err != nil {
		return nil, err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	obs, err := a.opts.Services.Query(args.Service)
	if err != nil {
		return nil, err
	}
	svc := st.Services[args.Service]
	if obs.Installed {
		if obs.Status.State != StateStopped {
			if err := a.stopService(st, args.Service, a.stopTimeout(svc, args.TimeoutMS), emit); err != nil {
				return nil, fmt.Errorf("service %s: stop before delete: %w", args.Service, err)
			}
		}
		if err := a.opts.Services.Remove(args.Service); err != nil {
			return nil, fmt.Errorf("service %s: %w", args.Service, err)
		}
	}
	// Services that depended on this one cannot start without it; they
	// stay stopped, and are named so the user knows.
	if deps := st.StoppedDependentsOf(args.Service); len(deps) > 0 {
		emit(fmt.Sprintf("%s is deleted; the services that depended on it stay stopped: %s", args.Service, strings.Join(deps, ", ")), nil)
		st.ClearStoppedDependents(args.Service)
		if err := st.Save(a.layout); err != nil {
			return nil, err
		}
	}
	if svc != nil {
		delete(st.Services, args.Service)
		if args.Purge {
			a.pruneArtifacts(st, svc.Releases, emit)
			if err := atomicfile.RemoveTree(a.layout.ServiceDir(args.Service)); err != nil {
				emit(fmt.Sprintf("could not remove %s: %v", a.layout.ServiceDir(args.Service), err), nil)
			}
		}
		if err := st.Save(a.layout); err != nil {
			return nil, err
		}
	}
	return map[string]bool{"existed": obs.Installed || svc != nil}, nil
}

func (a *Agent) opSetRecovery(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.RecoveryArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	if err := protocol.ValidateServiceName(args.Service); err != nil {
		return nil, err
	}
	if err := validateRecovery(args.Recovery); err != nil {
		return nil, err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	svc, err := a.managedService(st, args.Service)
	if err != nil {
		return nil, err
	}
	gaps, err := a.opts.Services.SetRecovery(args.Service, args.Recovery)
	if err != nil {
		return nil, err
	}
	r := args.Recovery
	svc.Spec.Recovery = &r
	if _, ok := gaps["recovery"]; ok {
		if svc.Recorded == nil {
			svc.Recorded = &state.Recorded{}
		}
		svc.Recorded.Recovery = &r
	} else if svc.Recorded != nil {
		svc.Recorded.Recovery = nil
	}
	if err := st.Save(a.layout); err != nil {
		return nil, err
	}
	return map[string]any{"recorded_only": gaps}, nil
}

type switchResult struct {
	Service   string `json:"service"`
	From      string `json:"from,omitempty"`
	To        string `json:"to"`
	Changed   bool   `json:"changed"`
	Restarted bool   `json:"restarted"`
}

func (a *Agent) opSwitchRelease(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.SwitchArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	if err := protocol.ValidateServiceName(args.Service); err != nil {
		return nil, err
	}
	if err := protocol.ValidateSHA256(args.Artifact); err != nil {
		return nil, err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	return a.switchRelease(args.Service, args.Artifact, args.Version, emit)
}

func (a *Agent) opRollback(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	args, _, svc, err := a.serviceRefArgs(ctx, req, emit)
	if err != nil {
		return nil, err
	}
	if svc == nil || svc.Spec.Mode == "" {
		return nil, failf(protocol.CodeNotFound, "service %s is not managed by gsd on this host", args.Service)
	}
	prev := svc.Previous()
	if prev == nil {
		return nil, failf(protocol.CodeNotFound, "service %s has no previous release to roll back to", args.Service)
	}
	return a.switchRelease(args.Service, prev.Artifact, prev.Version, emit)
}

// switchRelease points a service at another staged artifact. A running
// service is stopped first and started again after, because Windows keeps a
// running image open and the SCM only reads the new path at start.
func (a *Agent) switchRelease(name, artifact, version string, emit progressFunc) (any, error) {
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	svc, err := a.managedService(st, name)
	if err != nil {
		return nil, err
	}
	res := switchResult{Service: name, To: artifact}
	if cur := svc.Current(); cur != nil {
		res.From = cur.Artifact
		if cur.Artifact == artifact {
			// Already switched; but an agent killed before the restart
			// left the service down, and a replay must bring it back.
			if svc.RestartPending {
				if err := a.finishRestart(st, svc, name, emit); err != nil {
					return nil, err
				}
				res.Restarted = true
			}
			return res, nil
		}
	}
	binary, err := a.store.Find(artifact)
	if err != nil {
		return nil, failf(protocol.CodeNotFound, "service %s: %v", name, err)
	}
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		return nil, err
	}
	if !obs.Installed {
		return nil, failf(protocol.CodeNotFound, "service %s is managed but not installed; ensure_service it again", name)
	}
	// RestartPending may be set by an earlier, killed switch that had
	// already stopped the service: it was running before, so it must run
	// after.
	wasRunning := obs.Status.State == StateRunning || obs.Status.State == StateStartPending || svc.RestartPending
	if wasRunning && !svc.RestartPending {
		svc.RestartPending = true
		if err := st.Save(a.layout); err != nil {
			return nil, err
		}
	}
	if wasRunning {
		emit(fmt.Sprintf("stopping %s to switch release", name), nil)
		if err := a.stopService(st, name, a.stopTimeout(svc, 0), emit); err != nil {
			return nil, fmt.Errorf("service %s: stop: %w", name, err)
		}
	}
	spec := svc.Spec
	spec.Artifact, spec.Version = artifact, version
	cfg, err := a.installConfig(spec, binary)
	if err != nil {
		return nil, err
	}
	if spec.Mode == protocol.ModeNative {
		// The password is not stored, and an empty one leaves the SCM's
		// stored password unchanged.
		if _, err := a.opts.Services.Reconfigure(name, cfg); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
	}
	dropped := svc.Activate(protocol.Release{Artifact: artifact, Version: version, Path: binary, Activated: time.Now().UTC()}, st.KeepReleases)
	svc.Spec = spec.Redacted()
	a.pruneArtifacts(st, dropped, emit)
	if err := st.Save(a.layout); err != nil {
		return nil, err
	}
	res.Changed = true
	if wasRunning {
		if err := a.finishRestart(st, svc, name, emit); err != nil {
			return nil, err
		}
		res.Restarted = true
	}
	return res, nil
}

// finishRestart starts a service a release switch stopped, unless it runs
// already, then the dependents the stop took down, and then clears
// svc.RestartPending.
func (a *Agent) finishRestart(st *state.State, svc *state.Service, name string, emit progressFunc) error {
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		return err
	}
	if obs.Installed && obs.Status.State != StateRunning && obs.Status.State != StateStartPending {
		emit(fmt.Sprintf("starting %s after release switch", name), nil)
		if err := a.opts.Services.Start(name, defaultStartWait); err != nil {
			return fmt.Errorf("service %s: start after switch: %w", name, err)
		}
	}
	if err := a.startDependents(st, name, emit); err != nil {
		return err
	}
	svc.RestartPending = false
	return st.Save(a.layout)
}

func (a *Agent) stopTimeout(svc *state.Service, override int64) time.Duration {
	if override > 0 {
		return time.Duration(override) * time.Millisecond
	}
	if svc != nil && svc.Spec.StopTimeout > 0 {
		// The wrapper waits StopTimeout before killing; give the SCM wait
		// headroom on top so the kill is seen as a stop, not a timeout.
		return time.Duration(svc.Spec.StopTimeout)*time.Millisecond + 10*time.Second
	}
	return defaultStopTimeout
}

func (a *Agent) serviceRefArgs(ctx context.Context, req protocol.Request, emit progressFunc) (protocol.ServiceRef, *state.State, *state.Service, error) {
	var args protocol.ServiceRef
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return args, nil, nil, badArgs(err)
	}
	if err := protocol.ValidateServiceName(args.Service); err != nil {
		return args, nil, nil, err
	}
	if args.TimeoutMS < 0 {
		return args, nil, nil, failf(protocol.CodeBadRequest, "negative timeout")
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return args, nil, nil, err
	}
	st, err := a.loadState()
	if err != nil {
		return args, nil, nil, err
	}
	return args, st, st.Services[args.Service], nil
}

// queryInstalled asks the service manager about a service that must exist.
func (a *Agent) queryInstalled(name string) (Observed, error) {
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		return obs, err
	}
	if !obs.Installed {
		return obs, failf(protocol.CodeNotFound, "service %s is not installed", name)
	}
	return obs, nil
}

// opStart starts a service and then the services that its last stop had to
// stop first, so a restart (stop, then start) leaves its dependents as it
// found them. They are started even when the service runs already: a
// replayed start after an agent died between the two must finish the job.
func (a *Agent) opStart(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	args, st, _, err := a.serviceRefArgs(ctx, req, emit)
	if err != nil {
		return nil, err
	}
	obs, err := a.queryInstalled(args.Service)
	if err != nil {
		return nil, err
	}
	changed := obs.Status.State != StateRunning
	if changed {
		timeout := defaultStartWait
		if args.TimeoutMS > 0 {
			timeout = time.Duration(args.TimeoutMS) * time.Millisecond
		}
		if err := a.opts.Services.Start(args.Service, timeout); err != nil {
			return nil, fmt.Errorf("service %s: %w", args.Service, err)
		}
		obs, _ = a.opts.Services.Query(args.Service)
	}
	if err := a.startDependents(st, args.Service, emit); err != nil {
		return nil, err
	}
	return map[string]any{"changed": changed, "pid": obs.Status.PID}, nil
}

// opStop stops a service, and first the services that depend on it (see
// stopService); those that ran start again with its next start.
func (a *Agent) opStop(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	args, st, svc, err := a.serviceRefArgs(ctx, req, emit)
	if err != nil {
		return nil, err
	}
	obs, err := a.queryInstalled(args.Service)
	if err != nil {
		return nil, err
	}
	if obs.Status.State == StateStopped {
		return map[string]any{"changed": false}, nil
	}
	if err := a.stopService(st, args.Service, a.stopTimeout(svc, args.TimeoutMS), emit); err != nil {
		return nil, fmt.Errorf("service %s: %w", args.Service, err)
	}
	return map[string]any{"changed": true}, nil
}

func (a *Agent) opReload(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	args, _, _, err := a.serviceRefArgs(ctx, req, emit)
	if err != nil {
		return nil, err
	}
	if err := a.opts.Services.ParamChange(args.Service); err != nil {
		return nil, fmt.Errorf("service %s: %w", args.Service, err)
	}
	return struct{}{}, nil
}
