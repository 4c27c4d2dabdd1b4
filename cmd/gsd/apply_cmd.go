package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/views"
)

func init() {
	register(command{name: "apply", summary: "Carry out a plan (made now, or saved with plan -out)", run: runApply})
	register(command{name: "destroy", summary: "Remove the services and tasks gsd manages (or those named with -target)", run: runDestroy})
}

func runApply(env *cliEnv, args []string) error { return applyOrDestroy(env, "apply", args) }

func runDestroy(env *cliEnv, args []string) error { return applyOrDestroy(env, "destroy", args) }

// applyOrDestroy is gsd apply, and gsd destroy, which is an apply of a
// configuration without (the targeted) services: what gsd manages there is
// removed, and nothing gsd did not create is ever touched.
func applyOrDestroy(env *cliEnv, mode string, args []string) error {
	fs := newFlagSet(env, mode, "[PLANFILE | PATH...]")
	var cf configFlags
	cf.register(fs)
	var sel selectFlags
	sel.register(fs)
	sel.registerSkip(fs)
	a := applyArgs{mode: mode, cf: &cf, sel: &sel}
	fs.BoolVar(&a.autoApprove, "auto-approve", false, mode+" without asking for confirmation")
	fs.DurationVar(&a.lockTimeout, "lock-timeout", 0, "how long to wait for a host another apply holds (0: fail at once)")
	if mode == "apply" {
		// A destroy removes a service from all its hosts in one batch.
		fs.BoolVar(&a.cont, "continue", false, "go on past canary batches that pause (rollout canary_pause)")
	}
	asJSON := fs.Bool("json", false, "stream one JSON object per event instead of text (README: Machine-readable runs)")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when changes were made, 0 when there were none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a.paths = fs.Args()
	if *asJSON {
		a.events = views.NewApplyEvents(env.stdout, versionName(), nil)
	}
	res, err := a.run(env)
	code := applyExitCode(res, err, *detailed)
	if a.events == nil {
		if err == nil && code != 0 {
			return &exitError{code: code}
		}
		return err
	}
	// In a JSON stream every problem is an event, and the summary ends it.
	var ee *exitError
	if errors.As(err, &ee) {
		err = ee.err
	}
	if err != nil {
		a.events.Error(err)
	}
	a.events.Summary(views.RunSummary{Operation: mode, Plan: res.plan, Outcome: res.outcome, Applied: res.applied, ExitCode: code, Err: err})
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// applyArgs are gsd apply's and gsd destroy's command line.
type applyArgs struct {
	mode        string
	cf          *configFlags
	sel         *selectFlags
	paths       []string
	autoApprove bool
	lockTimeout time.Duration
	cont        bool
	// events is the JSON stream, or nil for text.
	events *views.ApplyEvents
}

// applyResult is what an apply got to: its plan, and what carrying it
// out did (applied is false when it was not carried out).
type applyResult struct {
	plan    *plan.Plan
	outcome apply.Outcome
	applied bool
}

// exitSkipped is the exit code of a run that skipped unreachable hosts
// (-skip-unreachable) and succeeded on the others.
const exitSkipped = 3

// applyExitCode is the exit code of apply and destroy: 1 on error, 3
// when hosts were skipped, 2 with -detailed-exitcode when changes were
// made, else 0.
func applyExitCode(res applyResult, err error, detailed bool) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case err != nil:
		return 1
	case res.plan != nil && len(res.plan.Skipped) > 0:
		return exitSkipped
	case detailed && res.applied:
		return 2
	}
	return 0
}

func (a *applyArgs) run(env *cliEnv) (applyResult, error) {
	var res applyResult
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := interrupts(env, cancel)

	paths := a.paths
	var saved *plan.Plan
	if len(paths) == 1 && isPlanFile(paths[0]) && a.mode == "apply" {
		f, err := os.Open(paths[0])
		if err != nil {
			return res, err
		}
		saved, err = plan.Read(f)
		f.Close()
		if err != nil {
			return res, fmt.Errorf("%s: %w", paths[0], err)
		}
		paths = nil
		// A saved plan is applied as it was made: what it selected was
		// chosen when it was made.
		if len(a.sel.targets) > 0 || len(a.sel.hostNames) > 0 || a.sel.skipUnreachable {
			return res, errors.New("-target, -host and -skip-unreachable choose what a plan covers, and a saved plan is applied as it was made; pass them to gsd plan -out instead")
		}
		// A saved plan is applied in the environment it was made for.
		switch {
		case a.cf.env == "":
			a.cf.env = saved.Environment
		case a.cf.env != saved.Environment:
			return res, fmt.Errorf("the saved plan was made for the environment %q, not %q; apply it without -env, or run gsd plan -env %s again", saved.Environment, a.cf.env, a.cf.env)
		}
	}
	if a.events != nil && saved == nil && !a.autoApprove {
		return res, errors.New("-json cannot ask for confirmation: pass -auto-approve, or apply a plan saved with gsd plan -out")
	}
	// The configuration gives how to reach the hosts and the secret
	// values; a saved plan gives everything else, and is refused if the
	// configuration changed since.
	cfg, err := a.load(env, paths)
	if err != nil {
		return res, err
	}
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return res, err
	}
	var p *plan.Plan
	if saved != nil {
		p = saved
		if err := checkSaved(ctx, cfg, saved, agent, a.sel.parallelism); err != nil {
			return res, err
		}
	} else if p, err = planFor(ctx, env, cfg, a.sel, agent, a.mode); err != nil {
		return res, err
	}
	res.plan = p
	color := useColor(env.isTerminal, a.cf.noColor, env)
	switch {
	case a.events != nil:
		a.events.Plan(p)
	case saved == nil || !p.Summary.HasChanges():
		if err := views.Plan(env.stdout, p, color); err != nil {
			return res, err
		}
	}
	if p.Summary.FailedHosts > 0 {
		return res, &exitError{code: 1, err: errors.New("some hosts could not be planned; nothing was applied")}
	}
	if !p.Summary.HasChanges() {
		return res, nil
	}
	if saved == nil && !a.autoApprove {
		if err := confirm(env); err != nil {
			return res, err
		}
	}
	opts := apply.Options{
		Parallelism: a.sel.parallelism,
		LockTimeout: a.lockTimeout,
		Stop:        stop,
		Continue:    a.cont,
		Secrets:     configSecrets(cfg),
	}
	if a.events != nil {
		opts.Hooks = a.events
	}
	res.applied = true
	res.outcome, err = execute(ctx, env, p, cfg, agent, color, "a rollout failed", opts)
	return res, err
}

// load reads the configuration as apply needs it; in a JSON run its
// diagnostics are events.
func (a *applyArgs) load(env *cliEnv, paths []string) (*config.Config, error) {
	if a.events == nil {
		return loadStrict(env, a.cf, paths)
	}
	cfg, diags := config.Load(a.cf.options(paths))
	a.events.Diagnostics(cfg.Files, diags)
	if diags.HasErrors() {
		return nil, errReported
	}
	return cfg, nil
}

// execute carries out p on the configuration's hosts, showing progress
// (opts.Hooks when set, else live on a terminal, plain lines otherwise),
// the rollout report and the summary; failed is the error when a rollout
// failed.
func execute(ctx context.Context, env *cliEnv, p *plan.Plan, cfg *config.Config, agent providers.Agent, color bool, failed string, opts apply.Options) (apply.Outcome, error) {
	opts.Operator = operator()
	text := opts.Hooks == nil
	finish := func() {}
	if text {
		opts.Hooks, finish = progressView(env, color)
	}
	out := apply.Execute(ctx, p, hostDialer(cfg, agent), opts)
	finish()
	if text {
		views.RolloutReport(env.stdout, out, color)
		if err := views.ApplySummary(env.stdout, out.Results, color); err != nil {
			return out, err
		}
		views.Skipped(env.stdout, p.Skipped, color)
	}
	if out.Failed() {
		return out, errors.New(failed)
	}
	return out, nil
}

// progressView is how progress is shown as text: a live area on a
// terminal, plain lines when not a terminal, in CI (CI set, as CI systems
// do) or without colour (-no-color, NO_COLOR, TERM=dumb). finish ends it.
func progressView(env *cliEnv, color bool) (hooks apply.Hooks, finish func()) {
	if f, ok := env.stdout.(*os.File); ok && color && env.getenv("CI") == "" {
		live := views.NewLiveApply(f)
		return live, live.Close
	}
	return views.NewApplyHooks(env.stdout, color), func() {}
}

// planFor makes the plan of gsd plan, apply or destroy (mode): builds,
// reads the hosts and compares. For apply and destroy it first finishes
// activations dead agents left unfinished, so the plan starts from hosts
// that each run one whole release; gsd plan only shows them.
func planFor(ctx context.Context, env *cliEnv, cfg *config.Config, sel *selectFlags, agent providers.Agent, mode string) (*plan.Plan, error) {
	hosts, err := sel.hosts(cfg)
	if err != nil {
		return nil, err
	}
	targets, err := sel.services(cfg)
	if err != nil {
		return nil, err
	}
	arts, err := artifactsFor(ctx, env, cfg)
	if err != nil {
		return nil, err
	}
	desiredCfg := cfg
	if mode == "destroy" {
		// Destroying a service must not take what depends on it along
		// unasked, nor what it depends on: only the names given (a
		// for_each block's services included).
		if targets, err = sel.named(cfg); err != nil {
			return nil, err
		}
		desiredCfg = cfg.Without(targets)
	}
	results := readHosts(ctx, hosts, dialFactsToPlan(agent, desiredCfg), sel.parallelism)
	var skipped []plan.SkippedHost
	if sel.skipUnreachable {
		results, skipped = dropUnreachable(results)
	}
	if mode != "plan" {
		results = recoverHosts(ctx, hosts, results, agent, sel.parallelism)
	}
	p, err := plan.Make(desiredCfg, arts, hostFacts(results))
	if err != nil {
		return nil, err
	}
	p.Skipped = skipped
	if targets != nil {
		plan.Target(p, targets)
	}
	return p, nil
}

// recoverHosts finishes, on every host whose facts show an activation a
// dead agent left unfinished, that activation (the agent does so when the
// lock is taken) and reads the host again, so the plan starts from a
// host that runs one whole release.
func recoverHosts(ctx context.Context, hosts []*config.Host, results map[string]hostResult, agent providers.Agent, parallelism int) map[string]hostResult {
	var pending []*config.Host
	for _, h := range hosts {
		if r := results[h.Name]; r.err == nil && r.facts != nil && r.facts.Journal != nil {
			pending = append(pending, h)
		}
	}
	if len(pending) == 0 {
		return results
	}
	again := eachHost(pending, parallelism, func(h *config.Host) hostResult {
		ctx, cancel := context.WithTimeout(ctx, hostReadTimeout)
		defer cancel()
		conn, err := dialHost[*providers.Host](agent, nil)(ctx, h)
		if err != nil {
			return hostResult{err: err}
		}
		defer conn.Close()
		if err := conn.Call(ctx, protocol.OpRecoverJournal, nil, nil); err != nil {
			return hostResult{err: fmt.Errorf("finishing an interrupted activation: %w", err)}
		}
		conn.Call(ctx, protocol.OpUnlock, nil, nil)
		f, err := conn.Facts(ctx)
		if err != nil {
			return hostResult{err: err}
		}
		return hostResult{facts: &f, agent: conn.Hello().AgentVersion}
	})
	for name, r := range again {
		results[name] = r
	}
	return results
}

// checkSaved refuses a saved plan whose world is gone, without building
// or planning again: secrets, artifact files and the facts of its hosts
// must be as they were.
func checkSaved(ctx context.Context, cfg *config.Config, saved *plan.Plan, agent providers.Agent, parallelism int) error {
	var hosts []*config.Host
	for _, hp := range saved.Hosts {
		h := cfg.Host(hp.Host)
		if h == nil {
			return fmt.Errorf("the saved plan names host %s, which the configuration no longer has; run gsd plan again", hp.Host)
		}
		hosts = append(hosts, h)
	}
	configFP, secretsFP, err := plan.ConfigFingerprints(cfg, saved.Fingerprints.Artifacts)
	if err != nil {
		return fmt.Errorf("the saved plan is stale: %w. Run gsd plan again", err)
	}
	facts := hostFacts(readHosts(ctx, hosts, dialFacts(agent), parallelism))
	return plan.CheckSaved(saved, configFP, secretsFP, facts, func(path string) (string, error) {
		a, err := build.Prebuilt(path)
		if err != nil {
			return "", err
		}
		return a.SHA256, nil
	})
}

// configSecrets resolves the secret values a step's release needs from
// the configuration.
func configSecrets(cfg *config.Config) apply.Secrets {
	return func(host string, s *plan.Step) (map[string]string, error) {
		return plan.SecretsFor(cfg, s, host)
	}
}

// isPlanFile tells a saved plan from a configuration path by its first
// bytes.
func isPlanFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := f.Read(head)
	return strings.Contains(string(head[:n]), `"magic": "gsd-plan"`)
}

// confirm asks for "yes" on the terminal before changing hosts.
func confirm(env *cliEnv) error {
	return askYes(env, "Do you want to apply these changes? Only 'yes' will be accepted: ", "pass -auto-approve, or apply a plan saved with gsd plan -out")
}

// interrupts turns the first Ctrl-C (or SIGTERM, as CI systems send when
// they cancel a job) into a graceful stop (steps in flight finish, no new
// one starts) and the second into an abort. Either way the hosts' locks
// are released and their agent sessions ended before gsd exits.
func interrupts(env *cliEnv, abort context.CancelFunc) <-chan struct{} {
	stop := make(chan struct{})
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(env.stderr, "\nStopping after the steps in flight; press Ctrl-C again to abort them.")
		close(stop)
		<-sig
		fmt.Fprintln(env.stderr, "\nAborting.")
		// A third Ctrl-C ends gsd at once, as without a handler.
		signal.Stop(sig)
		abort()
	}()
	return stop
}

func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// hostConn adapts providers.Host to the engine's connection.
type hostConn struct{ h *providers.Host }

func (c hostConn) Call(ctx context.Context, op string, args, result any) error {
	return c.h.Call(ctx, op, args, result)
}

func (c hostConn) Stage(ctx context.Context, sha string, size int64, name string, open func() (io.ReadCloser, error)) error {
	_, err := c.h.Stage(ctx, providers.Artifact{Name: name, SHA256: sha, Size: size, Open: open})
	return err
}

func (c hostConn) Close() error { return c.h.Close() }

// hostDialer reaches the plan's hosts as the configuration describes
// them, passing on what their agents say.
func hostDialer(cfg *config.Config, agent providers.Agent) apply.Dialer {
	return func(ctx context.Context, name string, report func(string)) (apply.Conn, error) {
		h := cfg.Host(name)
		if h == nil {
			return nil, fmt.Errorf("host %s is not in the configuration", name)
		}
		conn, err := dialHost[*providers.Host](agent, func(ev protocol.Event) {
			if ev.Message != "" && report != nil {
				report(ev.Message)
			}
		})(ctx, h)
		if err != nil {
			return nil, err
		}
		return hostConn{conn}, nil
	}
}
