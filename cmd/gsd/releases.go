package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/views"
)

func init() {
	register(command{name: "releases", summary: "List the releases each host keeps of a service, and which is active", run: runReleases})
	register(command{name: "rollback", summary: "Switch a service back to an earlier release it keeps, batch by batch", run: runRollback})
}

// serviceArgs parses "service.NAME [PATH...]" with flags anywhere, and
// loads the configuration.
func serviceArgs(env *cliEnv, cmd string, fs *flag.FlagSet, cf *configFlags, args []string) (*config.Config, *config.Service, error) {
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(positional) == 0 {
		fs.Usage()
		return nil, nil, usageError{fmt.Errorf("gsd %s needs a service, as service.NAME", cmd)}
	}
	cfg, err := loadStrict(env, cf, positional[1:])
	if err != nil {
		return nil, nil, err
	}
	svc, err := findService(cfg, strings.TrimPrefix(positional[0], "service."))
	if err != nil {
		return nil, nil, err
	}
	return cfg, svc, nil
}

func runReleases(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "releases", "service.NAME [PATH...]")
	var cf configFlags
	cf.register(fs)
	host := fs.String("host", "", "only this host")
	asJSON := fs.Bool("json", false, "print the releases as JSON")
	parallelism := fs.Int("parallelism", defaultParallelism, "hosts read at once")
	cfg, svc, err := serviceArgs(env, "releases", fs, &cf, args)
	if err != nil {
		return err
	}
	hosts, err := logHosts(cfg, svc, *host)
	if err != nil {
		return err
	}
	ctx := context.Background()
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	r := releasesView(svc.Name, hosts, readHosts(ctx, hosts, dialFacts(agent), *parallelism), time.Now())
	if *asJSON {
		err = views.ReleasesJSON(env.stdout, r)
	} else {
		err = views.ReleasesTable(env.stdout, r, useColor(env.isTerminal, cf.noColor, env))
	}
	if err != nil {
		return err
	}
	for _, h := range r.Hosts {
		if h.Error != "" {
			return errReported
		}
	}
	return nil
}

// releasesView is the view model of gsd releases, from each host's facts.
func releasesView(service string, hosts []*config.Host, results map[string]hostResult, now time.Time) *views.Releases {
	r := &views.Releases{Address: "service." + service, CheckedAt: now.UTC()}
	for _, h := range hosts {
		hr := &views.HostReleases{Host: h.Name, Releases: []*views.KeptRelease{}}
		r.Hosts = append(r.Hosts, hr)
		res := results[h.Name]
		if res.err != nil || res.facts == nil {
			hr.Error = errText(res.err, "facts could not be read")
			continue
		}
		sf := serviceOn(res.facts, service)
		if sf == nil {
			continue
		}
		for i, rel := range sf.Releases {
			hr.Releases = append(hr.Releases, &views.KeptRelease{ID: rel.ID, Version: rel.Version, Artifact: rel.Artifact,
				Activated: rel.Activated, By: rel.By, Changes: orEmpty(rel.Changes), Active: i == 0})
		}
	}
	return r
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func errText(err error, otherwise string) string {
	if err == nil {
		return otherwise
	}
	return err.Error()
}

// serviceOn finds a service in a host's facts, without regard to case.
func serviceOn(f *protocol.Facts, name string) *protocol.ServiceFacts {
	for i := range f.Services {
		if strings.EqualFold(f.Services[i].Name, name) {
			return &f.Services[i]
		}
	}
	return nil
}

func runRollback(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "rollback", "service.NAME [PATH...]")
	var cf configFlags
	cf.register(fs)
	host := fs.String("host", "", "only this host")
	to := fs.String("to", "", "the version (or release id) to return to; default: the release before the active one")
	autoApprove := fs.Bool("auto-approve", false, "roll back without asking for confirmation")
	lockTimeout := fs.Duration("lock-timeout", 0, "how long to wait for a host another apply holds (0: fail at once)")
	parallelism := fs.Int("parallelism", defaultParallelism, "hosts worked on at once")
	cfg, svc, err := serviceArgs(env, "rollback", fs, &cf, args)
	if err != nil {
		return err
	}
	hosts, err := logHosts(cfg, svc, *host)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := interrupts(env, cancel)
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	p, err := rollbackPlan(svc, hosts, readHosts(ctx, hosts, dialFacts(agent), *parallelism), *to)
	if err != nil {
		return err
	}
	color := useColor(env.isTerminal, cf.noColor, env)
	if err := views.Plan(env.stdout, p, color); err != nil {
		return err
	}
	if p.Summary.FailedHosts > 0 {
		return &exitError{code: 1, err: errors.New("some hosts could not be read; nothing was rolled back")}
	}
	if !p.Summary.HasChanges() {
		return nil
	}
	if !*autoApprove {
		if err := confirm(env); err != nil {
			return err
		}
	}
	_, err = execute(ctx, env, p, cfg, agent, color, "the rollback failed", apply.Options{
		Parallelism: *parallelism,
		LockTimeout: *lockTimeout,
		Stop:        stop,
	})
	return err
}

// rollbackPlan is a plan that activates, on each host, a release it keeps
// of svc: the one named by to (a version or release id), or the one
// before the active one. It uses the service's rollout policy and health
// check, and needs no build: the releases are on the hosts. A host where
// the service already runs that release has nothing to do.
func rollbackPlan(svc *config.Service, hosts []*config.Host, results map[string]hostResult, to string) (*plan.Plan, error) {
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Hosts: []*plan.HostPlan{}}
	var work []string
	var missing []string
	for _, h := range hosts {
		hp := &plan.HostPlan{Host: h.Name, Address: h.Address, Transport: h.Transport(), Steps: []*plan.Step{}}
		p.Hosts = append(p.Hosts, hp)
		res := results[h.Name]
		if res.err != nil || res.facts == nil {
			hp.Error = errText(res.err, "facts could not be read")
			p.Summary.FailedHosts++
			continue
		}
		sf := serviceOn(res.facts, svc.Name)
		if sf == nil || sf.Current == nil {
			missing = append(missing, h.Name+" (not deployed)")
			continue
		}
		target := pickRelease(sf.Releases, to)
		if target == nil {
			missing = append(missing, fmt.Sprintf("%s (keeps %s)", h.Name, keptList(sf.Releases)))
			continue
		}
		step := &plan.Step{Address: "service." + svc.Name, Kind: protocol.KindService, Service: svc.Name,
			Action: plan.ActionNoOp, Release: target.ID, From: sf.Current.ID, OldVersion: sf.Current.Version, Version: target.Version,
			Effect: protocol.EffectRestart, Restart: true, RestartReasons: []string{"rollback"}}
		if target.ID != sf.Current.ID {
			step.Action = plan.ActionReplace
			step.Changes = []plan.Change{{Attribute: "release", Old: strPtr(releaseLabel(*sf.Current)), New: strPtr(releaseLabel(*target)), Restart: true}}
			if sf.Status == nil || sf.Status.State != "running" {
				// A stopped service is switched, and left as it was.
				step.Effect, step.Restart, step.RestartReasons = protocol.EffectNone, false, nil
			}
			p.Summary.Change++
			work = append(work, h.Name)
		}
		hp.Steps = append(hp.Steps, step)
	}
	if len(missing) > 0 {
		what := "the release before the active one"
		if to != "" {
			what = to
		}
		return nil, fmt.Errorf("service.%s: no %s to roll back to on %s", svc.Name, what, strings.Join(missing, ", "))
	}
	if len(work) > 0 {
		sort.Strings(work)
		p.Rollouts = []*plan.Rollout{plan.RolloutOf(svc, work)}
	}
	return p, nil
}

// pickRelease is the kept release named by to (version or id), or the
// one before the active release.
func pickRelease(kept []protocol.Release, to string) *protocol.Release {
	if to == "" {
		if len(kept) < 2 {
			return nil
		}
		return &kept[1]
	}
	for i := range kept {
		if kept[i].ID == to || kept[i].Version == to {
			return &kept[i]
		}
	}
	return nil
}

func keptList(kept []protocol.Release) string {
	var out []string
	for _, r := range kept {
		out = append(out, releaseLabel(r))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func releaseLabel(r protocol.Release) string {
	if r.Version == "" {
		return r.ID
	}
	return r.Version + " (" + r.ID + ")"
}

func strPtr(s string) *string { return &s }
