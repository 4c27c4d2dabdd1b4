package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/views"
)

// An operation restarts, stops or starts a deployed service without
// changing its release: each host activates the release it runs again,
// with the operation's effect, under the agent's journal and lock, batch
// by batch as the service's rollout block says, and a restart or start is
// health-gated like a rollout.
type operation struct {
	verb string
	// effect is what activating the running release does, given whether
	// the service runs now; "" means there is nothing to do.
	effect func(running bool) string
	// after is the state the service is left in.
	after string
}

var operations = map[string]operation{
	"restart": {verb: "restart", after: "restarted", effect: func(running bool) string {
		if running {
			return protocol.EffectRestart
		}
		return protocol.EffectStart
	}},
	"stop": {verb: "stop", after: "stopped", effect: func(running bool) string {
		if running {
			return protocol.EffectStop
		}
		return ""
	}},
	"start": {verb: "start", after: "running", effect: func(running bool) string {
		if running {
			return ""
		}
		return protocol.EffectStart
	}},
}

func init() {
	for _, name := range []string{"restart", "stop", "start"} {
		op := operations[name]
		register(command{name: name, summary: map[string]string{
			"restart": "Restart a service on its hosts, batch by batch behind health checks",
			"stop":    "Stop a service on its hosts, batch by batch",
			"start":   "Start a stopped service on its hosts, batch by batch behind health checks",
		}[name], run: func(env *cliEnv, args []string) error { return runOperation(env, op, args) }})
	}
	serviceArg := [2]string{"service.NAME", "the service"}
	document("restart", commandDoc{args: "service.NAME [PATH...]",
		text: `Restart a deployed service on each of its hosts (or the one -host names), batch by batch as its rollout block says, ` +
			`each batch health-gated like a rollout: a host that fails its check stops the restart. A stopped service is started. ` +
			`Its release does not change; the hosts' locks and journal guard the restart as they guard an apply.`,
		arguments: [][2]string{serviceArg, pathArg},
		examples:  []string{"gsd restart service.api", "gsd restart service.api -host web1 -auto-approve"}})
	document("stop", commandDoc{args: "service.NAME [PATH...]",
		text: `Stop a deployed service on each of its hosts (or the one -host names), batch by batch. ` +
			`It stays stopped until gsd start, gsd restart or an apply (which starts a service that should run).`,
		arguments: [][2]string{serviceArg, pathArg},
		examples:  []string{"gsd stop service.api -host web1", "gsd stop service.api -auto-approve"}})
	document("start", commandDoc{args: "service.NAME [PATH...]",
		text: `Start a stopped service on each of its hosts (or the one -host names), batch by batch, each batch health-gated. ` +
			`Hosts where it runs are left alone.`,
		arguments: [][2]string{serviceArg, pathArg},
		examples:  []string{"gsd start service.api", "gsd start service.api -host web1 -auto-approve"}})
}

func runOperation(env *cliEnv, op operation, args []string) error {
	r := newServiceRun(env, op.verb, op.verb)
	return r.run(args, func(svc *config.Service, hosts []*config.Host, results map[string]hostResult) (*plan.Plan, error) {
		return operationPlan(op, svc, hosts, results)
	}, func(w io.Writer, p *plan.Plan, color bool) error {
		return views.Operation(w, op.verb, p, color)
	}, "was not "+op.after+" anywhere")
}

// serviceRun is what the commands that work on one deployed service
// without building anything (rollback, restart, stop, start) share: their
// options, reading the service's hosts, showing what will be done,
// asking, and carrying it out batch by batch.
type serviceRun struct {
	env         *cliEnv
	verb        string
	fs          *flag.FlagSet
	cf          configFlags
	host        *string
	autoApprove *bool
	lockTimeout *time.Duration
	parallelism *int
}

// newServiceRun registers the shared options; a command adds its own to
// r.fs before run.
func newServiceRun(env *cliEnv, name, verb string) *serviceRun {
	r := &serviceRun{env: env, verb: verb, fs: newFlagSet(env, name, "service.NAME [PATH...]")}
	r.cf.register(r.fs)
	r.host = r.fs.String("host", "", "only this host")
	r.autoApprove = r.fs.Bool("auto-approve", false, verb+" without asking for confirmation")
	r.lockTimeout = r.fs.Duration("lock-timeout", 0, "how long to wait for a host another apply holds (0: fail at once)")
	r.parallelism = r.fs.Int("parallelism", defaultParallelism, "hosts worked on at once")
	return r
}

// run parses args, reads the service's hosts, makes the plan with
// makePlan, shows it with show, asks, and carries it out. notDone ends
// the error when hosts could not be read ("was not restarted anywhere").
func (r *serviceRun) run(args []string, makePlan func(*config.Service, []*config.Host, map[string]hostResult) (*plan.Plan, error),
	show func(io.Writer, *plan.Plan, bool) error, notDone string) error {
	env := r.env
	cfg, svc, err := serviceArgs(env, r.fs.Name(), r.fs, &r.cf, args)
	if err != nil {
		return err
	}
	hosts, err := logHosts(cfg, svc, *r.host)
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
	p, err := makePlan(svc, hosts, readHosts(ctx, hosts, dialFacts(agent), *r.parallelism))
	if err != nil {
		return err
	}
	color := useColor(env.isTerminal, r.cf.noColor, env)
	if err := show(env.stdout, p, color); err != nil {
		return err
	}
	if p.Summary.FailedHosts > 0 {
		return &exitError{code: 1, err: fmt.Errorf("some hosts could not be read; service.%s %s", svc.Name, notDone)}
	}
	if !p.Summary.HasChanges() {
		return nil
	}
	if !*r.autoApprove {
		if err := confirm(env); err != nil {
			return err
		}
	}
	_, err = execute(ctx, env, p, cfg, agent, color, "the "+r.fs.Name()+" failed", apply.Options{
		Parallelism: *r.parallelism,
		LockTimeout: *r.lockTimeout,
		Stop:        stop,
	})
	return err
}

// operationPlan is the plan of an operation: on each host where the
// service is deployed and the operation changes something, activate the
// release it runs with the operation's effect.
func operationPlan(op operation, svc *config.Service, hosts []*config.Host, results map[string]hostResult) (*plan.Plan, error) {
	p, missing := servicePlan(svc, hosts, results, func(hp *plan.HostPlan, sf *protocol.ServiceFacts) (*plan.Step, string) {
		if sf == nil || sf.Current == nil {
			return nil, "host." + hp.Host
		}
		state := "unknown"
		if sf.Status != nil {
			state = sf.Status.State
		}
		step := &plan.Step{Address: "service." + svc.Name, Kind: protocol.KindService, Service: svc.Name, Action: plan.ActionNoOp,
			Release: sf.Current.ID, From: sf.Current.ID, OldVersion: sf.Current.Version, Version: sf.Current.Version,
			Changes: []plan.Change{{Attribute: "state", Old: strPtr(state)}}}
		if effect := op.effect(state == "running"); effect != "" {
			step.Action, step.Effect = plan.ActionUpdate, effect
			step.Changes[0].New = strPtr(op.after)
		}
		return step, ""
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("service.%s is not deployed on %s; gsd apply deploys it", svc.Name, strings.Join(missing, ", "))
	}
	for _, ro := range p.Rollouts {
		ro.Gated = op.verb != "stop"
		// The release stays: there is nothing to roll back to.
		ro.AutoRollback = false
	}
	return p, nil
}
