package main

import (
	"context"
	"fmt"
	"sort"

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
	fs := newFlagSet(env, op.verb, "service.NAME [PATH...]")
	var cf configFlags
	cf.register(fs)
	host := fs.String("host", "", "only this host")
	autoApprove := fs.Bool("auto-approve", false, op.verb+" without asking for confirmation")
	lockTimeout := fs.Duration("lock-timeout", 0, "how long to wait for a host another apply holds (0: fail at once)")
	parallelism := fs.Int("parallelism", defaultParallelism, "hosts worked on at once")
	cfg, svc, err := serviceArgs(env, op.verb, fs, &cf, args)
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
	p, err := operationPlan(op, svc, hosts, readHosts(ctx, hosts, dialFacts(agent), *parallelism))
	if err != nil {
		return err
	}
	color := useColor(env.isTerminal, cf.noColor, env)
	if err := views.Operation(env.stdout, op.verb, p, color); err != nil {
		return err
	}
	if p.Summary.FailedHosts > 0 {
		return &exitError{code: 1, err: fmt.Errorf("some hosts could not be read; service.%s was not %s anywhere", svc.Name, op.after)}
	}
	if !p.Summary.HasChanges() {
		return nil
	}
	if !*autoApprove {
		if err := confirm(env); err != nil {
			return err
		}
	}
	_, err = execute(ctx, env, p, cfg, agent, color, "the "+op.verb+" failed", apply.Options{
		Parallelism: *parallelism,
		LockTimeout: *lockTimeout,
		Stop:        stop,
	})
	return err
}

// operationPlan is the plan of an operation: on each host where the
// service is deployed and the operation changes something, activate the
// release it runs with the operation's effect.
func operationPlan(op operation, svc *config.Service, hosts []*config.Host, results map[string]hostResult) (*plan.Plan, error) {
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Hosts: []*plan.HostPlan{}}
	var work, missing []string
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
			missing = append(missing, h.Name)
			continue
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
			p.Summary.Change++
			work = append(work, h.Name)
		}
		hp.Steps = append(hp.Steps, step)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("service.%s is not deployed on %s; gsd apply deploys it", svc.Name, joinHosts(missing))
	}
	if len(work) > 0 {
		sort.Strings(work)
		ro := plan.RolloutOf(svc, work)
		ro.Gated = op.verb != "stop"
		// The release stays: there is nothing to roll back to.
		ro.AutoRollback = false
		p.Rollouts = []*plan.Rollout{ro}
	}
	return p, nil
}

func joinHosts(hosts []string) string {
	out := ""
	for i, h := range hosts {
		if i > 0 {
			out += ", "
		}
		out += "host." + h
	}
	return out
}
