package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
)

func badArgs(err error) error { return failf(protocol.CodeBadRequest, "%v", err) }

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
	if err := CheckProcess(protocol.KindService, spec.Name, spec.Process()); err != nil {
		return err
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
	if w := spec.Wrapper; w != nil && w.LogDir != "" {
		if err := protocol.ValidateWindowsPath(w.LogDir); err != nil {
			return failf(protocol.CodeBadRequest, "service %s: log dir: %v", spec.Name, err)
		}
	}
	if w := spec.Wrapper; w != nil && w.WorkDir != "" {
		if err := protocol.ValidateWindowsPath(w.WorkDir); err != nil {
			return failf(protocol.CodeBadRequest, "service %s: work dir: %v", spec.Name, err)
		}
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for _, f := range spec.Files {
		if err := protocol.ValidateRelPath(f.Name); err != nil {
			return err
		}
		if f.Path != "" {
			if err := protocol.ValidateWindowsPath(f.Path); err != nil {
				return failf(protocol.CodeBadRequest, "service %s: file %s: %v", spec.Name, f.Name, err)
			}
		}
		key, where := strings.ToLower(f.Name), strings.ToLower(f.Path)
		if names[key] || (where != "" && paths[where]) {
			return failf(protocol.CodeBadRequest, "service %s: file %s is named twice", spec.Name, f.Name)
		}
		names[key], paths[where] = true, where != ""
		switch f.OnChange {
		case "", "restart", "reload", "none":
		default:
			return failf(protocol.CodeBadRequest, "service %s: file %s: on_change %q must be restart, reload or none", spec.Name, f.Name, f.OnChange)
		}
		if protocol.SHA256Hex(f.Content) != f.SHA256 {
			return failf(protocol.CodeHashMismatch, "service %s: file %s: its content does not match SHA-256 %s", spec.Name, f.Name, f.SHA256)
		}
	}
	return nil
}

// CheckProcess refuses the process part of a release (of a service or a
// task: kind and name say which) before anything is touched: an
// artifact that is not a SHA-256, arguments or environment that Windows
// cannot pass.
func CheckProcess(kind, name string, p protocol.Process) error {
	if err := protocol.ValidateSHA256(p.Artifact); err != nil {
		return err
	}
	for _, arg := range p.Args {
		if strings.ContainsRune(arg, 0) {
			return failf(protocol.CodeBadRequest, "%s %s: an argument contains NUL", kind, name)
		}
	}
	for k, v := range p.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return failf(protocol.CodeBadRequest, "%s %s: environment variable %q is not valid", kind, name, k)
		}
	}
	if strings.ContainsRune(p.Account.Name, 0) || strings.ContainsRune(p.Account.Password, 0) {
		return failf(protocol.CodeBadRequest, "%s %s: the account contains NUL", kind, name)
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
	if strings.ContainsRune(r.Command, 0) {
		return failf(protocol.CodeBadRequest, "recovery command contains NUL")
	}
	if r.ResetAfterMS < 0 {
		return failf(protocol.CodeBadRequest, "recovery reset period is negative")
	}
	return nil
}

// installConfig turns a whole release into SCM settings. Wrapped
// services run the service host, which reads wrapper.json; that file is
// written here too.
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
		Dir:           a.workDirOf(spec),
		Env:           spec.Env,
		LogDir:        a.layout.LogDir(spec.Name),
		StopTimeoutMS: spec.StopTimeout,
		StatusFile:    a.layout.WrapperStatus(spec.Name),
	}
	if w := spec.Wrapper; w != nil {
		wc.LogMaxBytes, wc.LogKeep = w.LogMaxBytes, w.LogKeep
		wc.BackoffInitialMS, wc.BackoffMaxMS = w.BackoffInitialMS, w.BackoffMaxMS
		if w.LogDir != "" {
			wc.LogDir = a.hostPath(w.LogDir)
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
	cfg.Env = nil
	return cfg, nil
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

// passwordRecord is the password hash to keep after an activation that
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
		if r.Artifact != "" { // a firewall rule or event source runs none
			remove[r.Artifact] = true
		}
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

// neededArtifacts are those a kept release, a staged one or the pending
// journal uses.
func (a *Agent) neededArtifacts(st *state.State) (map[string]bool, error) {
	keep := st.ReferencedArtifacts()
	ids, err := a.releases.IDs()
	if err != nil {
		return nil, err
	}
	for sha := range a.releaseArtifacts(ids...) {
		keep[sha] = true
	}
	return keep, nil
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
	existed, err := a.deleteService(args.Service, args.TimeoutMS, args.Purge, emit)
	if err != nil {
		return nil, err
	}
	return map[string]bool{"existed": existed}, nil
}

// opDelete removes a resource of any kind.
func (a *Agent) opDelete(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.DeleteArgs
	k, err := a.kindArgs(req, &args, func() (string, string) { return args.Kind, args.Name })
	if err != nil {
		return nil, err
	}
	if args.TimeoutMS < 0 {
		return nil, failf(protocol.CodeBadRequest, "delete: negative timeout")
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	existed, err := k.remove(a, args.Name, args.TimeoutMS, emit)
	if err != nil {
		return nil, err
	}
	return map[string]bool{"existed": existed}, nil
}

// deleteService stops and removes a service, and with purge its files,
// folders and releases.
func (a *Agent) deleteService(name string, timeoutMS int64, purge bool, emit progressFunc) (bool, error) {
	st, err := a.loadState()
	if err != nil {
		return false, err
	}
	obs, err := a.opts.Services.Query(name)
	if err != nil {
		return false, err
	}
	svc := st.Services[name]
	if obs.Installed {
		if obs.Status.State != StateStopped {
			if err := a.stopService(st, name, a.stopTimeout(svc, timeoutMS), emit); err != nil {
				return false, fmt.Errorf("service %s: stop before delete: %w", name, err)
			}
		}
		if err := a.opts.Services.Remove(name); err != nil {
			return false, fmt.Errorf("service %s: %w", name, err)
		}
		if after, err := a.opts.Services.Query(name); err == nil && after.Installed {
			emit(fmt.Sprintf("%s is marked for deletion on %s; Windows removes it once %s let go of it", name, hostname(), a.handleHolders()), nil)
			if st.Deleting == nil {
				st.Deleting = map[string]bool{}
			}
			st.Deleting[strings.ToLower(name)] = true
			if err := st.Save(a.layout); err != nil {
				return false, err
			}
		}
	}
	// Services that depended on this one cannot start without it; they
	// stay stopped, and are named so the user knows.
	if deps := st.StoppedDependentsOf(name); len(deps) > 0 {
		emit(fmt.Sprintf("%s is deleted; the services that depended on it stay stopped: %s", name, strings.Join(deps, ", ")), nil)
		st.ClearStoppedDependents(name)
		if err := st.Save(a.layout); err != nil {
			return false, err
		}
	}
	if svc != nil {
		delete(st.Services, name)
		a.releaseLogonRights(st, emit)
		if err := st.Save(a.layout); err != nil {
			return false, err
		}
		if purge {
			for _, f := range svc.Spec.Files {
				if f.Path != "" {
					if err := os.Remove(a.filePath(name, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						emit(fmt.Sprintf("could not remove %s: %v", f.Path, err), nil)
					}
				}
			}
			if err := atomicfile.RemoveTree(a.layout.ServiceDir(name)); err != nil {
				emit(fmt.Sprintf("could not remove %s: %v", a.layout.ServiceDir(name), err), nil)
			}
			a.prune(svc.Releases, emit)
		}
	}
	return obs.Installed || svc != nil, nil
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
