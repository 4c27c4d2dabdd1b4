package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
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
	r := newServiceRun(env, "rollback", "roll back")
	to := r.fs.String("to", "", "the version (or release id) to return to; default: the release before the active one")
	return r.run(args, func(svc *config.Service, hosts []*config.Host, results map[string]hostResult) (*plan.Plan, error) {
		return rollbackPlan(svc, hosts, results, *to)
	}, views.Plan, "was not rolled back anywhere")
}

// rollbackPlan is a plan that activates, on each host, a release it keeps
// of svc: the one named by to (a version or release id), or the one
// before the active one. It uses the service's rollout policy and health
// check, and needs no build: the releases are on the hosts. A host where
// the service already runs that release has nothing to do.
func rollbackPlan(svc *config.Service, hosts []*config.Host, results map[string]hostResult, to string) (*plan.Plan, error) {
	p, missing := servicePlan(svc, hosts, results, func(hp *plan.HostPlan, sf *protocol.ServiceFacts) (*plan.Step, string) {
		if sf == nil || sf.Current == nil {
			return nil, hp.Host + " (not deployed)"
		}
		target := pickRelease(sf.Releases, to)
		if target == nil {
			return nil, fmt.Sprintf("%s (keeps %s)", hp.Host, keptList(sf.Releases))
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
		}
		return step, ""
	})
	if len(missing) > 0 {
		what := "the release before the active one"
		if to != "" {
			what = to
		}
		return nil, fmt.Errorf("service.%s: no %s to roll back to on %s", svc.Name, what, strings.Join(missing, ", "))
	}
	return p, nil
}

// servicePlan makes the plan of a command that works on one deployed
// service without building (rollback, restart, stop, start): a host that
// could not be read fails; for every other one, step gets the service's
// facts there (nil when it has none) and returns the host's step, or why
// the host cannot take part. Hosts whose step does something are rolled
// out as the service's rollout block says.
func servicePlan(svc *config.Service, hosts []*config.Host, results map[string]hostResult,
	step func(hp *plan.HostPlan, sf *protocol.ServiceFacts) (*plan.Step, string)) (p *plan.Plan, missing []string) {
	p = &plan.Plan{FormatVersion: plan.FormatVersion, Hosts: []*plan.HostPlan{}}
	var work []string
	for _, h := range hosts {
		hp := &plan.HostPlan{Host: h.Name, Address: h.Address, Transport: h.Transport(), Steps: []*plan.Step{}}
		p.Hosts = append(p.Hosts, hp)
		res := results[h.Name]
		if res.err != nil || res.facts == nil {
			hp.Error = errText(res.err, "facts could not be read")
			p.Summary.FailedHosts++
			continue
		}
		s, why := step(hp, serviceOn(res.facts, svc.Name))
		if why != "" {
			missing = append(missing, why)
			continue
		}
		if s.Action != plan.ActionNoOp {
			p.Summary.Change++
			work = append(work, h.Name)
		}
		hp.Steps = append(hp.Steps, s)
	}
	if len(work) > 0 {
		sort.Strings(work)
		ro := plan.RolloutOf(svc, work)
		// The canary still goes first and its failure stops the rest, but
		// these commands have no -continue: a pause would hold them at
		// the canary for good, and running them again would only redo it.
		ro.CanaryPause = false
		p.Rollouts = []*plan.Rollout{ro}
	}
	return p, missing
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
