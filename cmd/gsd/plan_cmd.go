package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/views"
)

func init() {
	register(command{name: "plan", summary: "Build, read every host, and show what would change", run: runPlan})
}

// selectFlags narrow a run to some services and hosts.
type selectFlags struct {
	targets     multiFlag
	hostNames   multiFlag
	parallelism int
	// skipUnreachable leaves hosts that cannot be reached out of the
	// plan instead of failing it (skip.go).
	skipUnreachable bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// defaultParallelism is how many hosts a command works on at once. gsd's
// own cost per host is small (make bench-scale: about 2 ms of CPU and a
// few hundred KB per host, two connections each), so the bound is the
// hosts' and the network's, not gsd's: a no-op plan over 1,000 hosts
// 20 ms away takes 25 s at 10, 6 s at 50 and 3 s at 100. 50 keeps a
// large fleet quick while staying well inside a default limit of 1,024
// open files.
const defaultParallelism = 50

func (s *selectFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.targets, "target", "only this service or task, as service.NAME or task.NAME (repeatable); a service's dependencies come along")
	s.registerHosts(fs)
}

// registerHosts registers -host and -parallelism alone, for commands
// that work on hosts, not services.
func (s *selectFlags) registerHosts(fs *flag.FlagSet) {
	fs.Var(&s.hostNames, "host", "only this host (repeatable)")
	fs.IntVar(&s.parallelism, "parallelism", defaultParallelism, "hosts worked on at once")
}

// registerSkip registers -skip-unreachable, for the commands that plan.
func (s *selectFlags) registerSkip(fs *flag.FlagSet) {
	fs.BoolVar(&s.skipUnreachable, "skip-unreachable", false, "plan and apply the hosts that can be reached, list the others, and exit 3")
}

// hosts returns the selected hosts, refusing names that do not exist.
func (s *selectFlags) hosts(cfg *config.Config) ([]*config.Host, error) {
	if len(s.hostNames) == 0 {
		return cfg.Hosts, nil
	}
	var out []*config.Host
	for _, n := range s.hostNames {
		h := cfg.Host(strings.TrimPrefix(n, "host."))
		if h == nil {
			return nil, fmt.Errorf("-host %s: no such host in the configuration", n)
		}
		out = append(out, h)
	}
	return out, nil
}

// services returns the targeted services with everything they depend
// on, or nil when there is no -target.
func (s *selectFlags) services(cfg *config.Config) ([]string, error) {
	named, err := s.named(cfg)
	if named == nil || err != nil {
		return named, err
	}
	seen := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if svc := cfg.Service(name); svc != nil {
			for _, d := range svc.DependsOn {
				if d.Service != "" {
					add(d.Service)
				}
			}
		}
	}
	for _, n := range named {
		add(n)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// named returns the services and tasks -target names, a for_each block
// standing for all its services, or nil when there is no -target.
func (s *selectFlags) named(cfg *config.Config) ([]string, error) {
	if len(s.targets) == 0 {
		return nil, nil
	}
	var out []string
	for _, t := range s.targets {
		if name, ok := strings.CutPrefix(t, "task."); ok {
			if cfg.Task(name) == nil {
				return nil, fmt.Errorf("-target %s: no such task in the configuration", t)
			}
			out = append(out, name)
			continue
		}
		name, ok := strings.CutPrefix(t, "service.")
		if !ok || name == "" {
			return nil, fmt.Errorf("-target %s: write service.NAME or task.NAME", t)
		}
		if cfg.Service(name) != nil {
			out = append(out, name)
			continue
		}
		found := false
		for _, svc := range cfg.Services {
			if svc.Key != "" && svc.Block == name {
				out = append(out, svc.Name)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-target %s: no such service in the configuration", t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// loadStrict loads the configuration as plan and apply need it: every
// variable must have a value. Diagnostics go to stderr.
func loadStrict(env *cliEnv, cf *configFlags, paths []string) (*config.Config, error) {
	cfg, diags := config.Load(cf.options(paths))
	if err := reportDiagnostics(env, cfg.Files, diags, cf.errColor(env)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// artifactsFor builds (or finds in the cache) every binary the services
// use, reporting build progress on stderr.
func artifactsFor(ctx context.Context, env *cliEnv, cfg *config.Config) (map[string]*build.Artifact, error) {
	out := map[string]*build.Artifact{}
	var builds []*config.Build
	for _, use := range cfg.Binaries() {
		if use.Binary.Build != "" {
			builds = append(builds, cfg.Build(use.Binary.Build))
			continue
		}
		a, err := build.Prebuilt(use.Binary.Path)
		if err != nil {
			return nil, fmt.Errorf("%s binary: %w", use.Address, err)
		}
		out[plan.ArtifactKey(use.Binary)] = a
	}
	built, err := build.Run(ctx, builds, build.Options{OnEvent: func(e build.Event) {
		if e.Kind == "start" {
			fmt.Fprintf(env.stderr, "Building %s...\n", e.Build)
		}
	}})
	if err != nil {
		return nil, err
	}
	for name, a := range built {
		out["build."+name] = a
	}
	return out, nil
}

func runPlan(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "plan", "[PATH...]")
	var cf configFlags
	cf.register(fs)
	var sel selectFlags
	sel.register(fs)
	sel.registerSkip(fs)
	out := fs.String("out", "", "save the plan to this file for gsd apply")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx := context.Background()
	p, err := makePlan(ctx, env, &cf, &sel, fs.Args())
	if err != nil {
		return err
	}
	if *asJSON {
		err = views.PlanJSON(env.stdout, p)
	} else {
		err = views.Plan(env.stdout, p, useColor(env.isTerminal, cf.noColor, env))
	}
	if err != nil {
		return err
	}
	if *out != "" {
		if err := savePlan(*out, p); err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "Saved the plan to %s. Apply it with: gsd apply %s\n", *out, *out)
	}
	switch {
	case p.Summary.FailedHosts > 0:
		return errReported
	case len(p.Skipped) > 0:
		return &exitError{code: exitSkipped}
	case *detailed && p.Summary.HasChanges():
		return &exitError{code: 2}
	}
	return nil
}

// makePlan does the whole of gsd plan but the rendering: load, build,
// read hosts, compare. It changes nothing on any host.
func makePlan(ctx context.Context, env *cliEnv, cf *configFlags, sel *selectFlags, paths []string) (*plan.Plan, error) {
	cfg, err := loadStrict(env, cf, paths)
	if err != nil {
		return nil, err
	}
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return nil, err
	}
	return planFor(ctx, env, cfg, sel, agent, "plan")
}

// savePlan writes the plan file atomically and readable by its owner
// only: it names hosts and releases, though no secret.
func savePlan(path string, p *plan.Plan) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".gsd-plan-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := plan.Write(f, p); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
