package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/views"
	"golang.org/x/term"
)

func init() {
	register(command{name: "apply", summary: "Carry out a plan (made now, or saved with plan -out)", run: runApply})
	register(command{name: "destroy", summary: "Remove the services gsd manages (or those named with -target)", run: runDestroy})
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
	autoApprove := fs.Bool("auto-approve", false, "apply without asking for confirmation")
	lockTimeout := fs.Duration("lock-timeout", 0, "how long to wait for a host another apply holds (0: fail at once)")
	cont := fs.Bool("continue", false, "go on past canary batches that pause (rollout canary_pause)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := interrupts(env, cancel)

	paths := fs.Args()
	var saved *plan.Plan
	if len(paths) == 1 && isPlanFile(paths[0]) && mode == "apply" {
		f, err := os.Open(paths[0])
		if err != nil {
			return err
		}
		saved, err = plan.Read(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", paths[0], err)
		}
		paths = nil
	}
	cfg, err := loadStrict(env, &cf, paths)
	if err != nil {
		return err
	}
	hosts, err := sel.hosts(cfg)
	if err != nil {
		return err
	}
	targets, err := sel.services(cfg)
	if err != nil {
		return err
	}
	arts, err := artifactsFor(ctx, env, cfg)
	if err != nil {
		return err
	}
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	desiredCfg := cfg
	if mode == "destroy" {
		desiredCfg = withoutServices(cfg, targets)
		if targets != nil {
			// Destroying a service must not take what depends on it
			// along unasked, nor what it depends on: only the names given.
			targets = nil
			for _, t := range sel.targets {
				targets = append(targets, strings.TrimPrefix(t, "service."))
			}
		}
	}
	fresh, err := plan.Make(desiredCfg, arts, hostFacts(readHosts(ctx, hosts, dialFacts(agent), sel.parallelism)))
	if err != nil {
		return err
	}
	if targets != nil {
		plan.Target(fresh, targets)
	}
	p := fresh
	if saved != nil {
		// A saved plan is applied only while the world it was made in
		// still stands; its steps are then exactly the fresh ones.
		if err := plan.Stale(saved.Fingerprints, fresh.Fingerprints); err != nil {
			return err
		}
		p = saved
	}
	color := useColor(env.isTerminal, cf.noColor, env)
	if saved == nil || !p.Summary.HasChanges() {
		if err := views.Plan(env.stdout, p, color); err != nil {
			return err
		}
	}
	if p.Summary.FailedHosts > 0 {
		return &exitError{code: 1, err: errors.New("some hosts could not be planned; nothing was applied")}
	}
	if !p.Summary.HasChanges() {
		return nil
	}
	if saved == nil && !*autoApprove {
		if err := confirm(env); err != nil {
			return err
		}
	}
	want := desired(cfg, arts)
	byName := map[string]*config.Host{}
	for _, h := range cfg.Hosts {
		byName[h.Name] = h
	}
	out := apply.Execute(ctx, p, byName, want, providerDialer(agent), apply.Options{
		Parallelism: sel.parallelism,
		LockTimeout: *lockTimeout,
		Operator:    operator(),
		Stop:        stop,
		Continue:    *cont,
		OnEvent:     func(e apply.Event) { views.ApplyEvent(env.stdout, e, color) },
	})
	views.RolloutReport(env.stdout, out, color)
	if err := views.ApplySummary(env.stdout, out.Results, color); err != nil {
		return err
	}
	if out.Failed() {
		return errors.New("a rollout failed")
	}
	return nil
}

// withoutServices is cfg with the targeted services (all when targets is
// nil) removed, the desired state that destroys them.
func withoutServices(cfg *config.Config, targets []string) *config.Config {
	var keep []*config.Service
	if targets != nil {
		drop := map[string]bool{}
		for _, t := range targets {
			drop[t] = true
		}
		for _, s := range cfg.Services {
			if !drop[s.Name] {
				keep = append(keep, s)
			}
		}
	}
	return cfg.WithServices(keep)
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

// confirm asks for "yes" on the terminal. Without one (CI, a pipe) it
// refuses rather than hang or guess.
func confirm(env *cliEnv) error {
	if f, ok := env.stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("no terminal to confirm on: pass -auto-approve, or apply a plan saved with gsd plan -out")
	}
	fmt.Fprint(env.stdout, "\nDo you want to apply these changes? Only 'yes' will be accepted: ")
	line, _ := bufio.NewReader(env.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return &exitError{code: 1, err: errors.New("apply cancelled")}
	}
	return nil
}

// interrupts turns the first Ctrl-C into a graceful stop (steps in flight
// finish, no new one starts) and the second into an abort.
func interrupts(env *cliEnv, abort context.CancelFunc) <-chan struct{} {
	stop := make(chan struct{})
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt)
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

// desired gathers what the steps are carried out with, secrets included,
// from the configuration the plan's fingerprint was checked against.
func desired(cfg *config.Config, arts map[string]*build.Artifact) apply.Desired {
	d := apply.Desired{Specs: map[string]protocol.ServiceSpec{}, Files: map[string][]*config.File{}, Artifacts: map[string]*build.Artifact{}, Health: map[string]*protocol.HealthCheck{}}
	for _, svc := range cfg.Services {
		art := arts[plan.ArtifactKey(svc.Binary)]
		d.Specs[svc.Name] = plan.Spec(svc, art)
		d.Health[svc.Name] = plan.HealthCheck(svc.Health)
		d.Files[svc.Name] = svc.Files
		d.Artifacts[art.SHA256] = art
	}
	return d
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

func providerDialer(agent providers.Agent) apply.Dialer {
	return func(ctx context.Context, h *config.Host) (apply.Conn, error) {
		conn, err := providers.Dial(ctx, h, providers.Options{Agent: agent})
		if err != nil {
			return nil, err
		}
		return hostConn{conn}, nil
	}
}
