package main

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/views"
)

func init() {
	register(command{name: "status", summary: "Show what runs where: release, state, health, restarts and drift", run: runStatus})
}

// statusHealthTimeout bounds each service's health check in gsd status:
// one quick look at how it is doing now, not the patient gate apply
// waits at. statusCallSlack is what the round trip may add to it.
const (
	statusHealthTimeout = 5 * time.Second
	statusCallSlack     = 10 * time.Second
)

// statusConn is what gsd status needs of a host's agent: its facts, then
// one health check per service over the same session.
type statusConn interface {
	Facts(ctx context.Context) (protocol.Facts, error)
	Call(ctx context.Context, op string, args, result any) error
	Hello() protocol.Hello
	Close() error
}

func dialStatus(agent providers.Agent) func(context.Context, *config.Host) (statusConn, error) {
	return func(ctx context.Context, h *config.Host) (statusConn, error) {
		c, err := providers.Dial(ctx, h, providers.Options{Agent: agent})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func runStatus(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "status", "[PATH...]")
	var cf configFlags
	cf.register(fs)
	var sel selectFlags
	sel.register(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx := context.Background()
	cfg, err := loadStrict(env, &cf, fs.Args())
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
	// Drift is the plan's difference, so it needs the artifacts the plan
	// compares with; builds are cached by their inputs.
	arts, err := artifactsFor(ctx, env, cfg)
	if err != nil {
		return err
	}
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	st, err := makeStatus(ctx, cfg, arts, hostsRunning(cfg, hosts, targets), targets, dialStatus(agent), sel.parallelism, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		err = views.StatusJSON(env.stdout, st)
	} else {
		err = views.StatusTable(env.stdout, st, useColor(env.isTerminal, cf.noColor, env))
	}
	if err != nil {
		return err
	}
	if st.Summary.FailedHosts > 0 {
		return errReported
	}
	return nil
}

// hostsRunning narrows hosts to those the configuration places one of
// the targeted services on; with no -target every host is asked.
func hostsRunning(cfg *config.Config, hosts []*config.Host, targets []string) []*config.Host {
	if targets == nil {
		return hosts
	}
	var out []*config.Host
	for _, h := range hosts {
		for _, t := range targets {
			if svc := cfg.Service(t); svc != nil && slices.Contains(svc.Hosts, h.Name) {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

// makeStatus reads every host (facts and a quick health check of each
// service) and compares them with the configuration. A host that cannot
// be read is reported with its error; the others are still shown.
func makeStatus(ctx context.Context, cfg *config.Config, arts map[string]*build.Artifact, hosts []*config.Host, targets []string,
	dial func(context.Context, *config.Host) (statusConn, error), parallelism int, now time.Time) (*views.Status, error) {
	results := readStatus(ctx, cfg, hosts, targets, dial, parallelism)
	facts := make(map[string]plan.HostFacts, len(results))
	for name, r := range results {
		facts[name] = plan.HostFacts{Facts: r.facts, Err: r.err}
	}
	p, err := plan.Make(cfg, arts, facts)
	if err != nil {
		return nil, err
	}
	return statusView(cfg, p, results, targets, now), nil
}

// hostStatus is what reading one host for gsd status gave.
type hostStatus struct {
	facts  *protocol.Facts
	agent  string
	health map[string]*views.HealthStatus // by lower-case service name
	err    error
}

// readStatus reaches each host, at most parallelism at a time, reads its
// facts in one round trip, then checks each running service's health in
// the same agent session.
func readStatus(ctx context.Context, cfg *config.Config, hosts []*config.Host, targets []string,
	dial func(context.Context, *config.Host) (statusConn, error), parallelism int) map[string]hostStatus {
	return eachHost(hosts, parallelism, func(h *config.Host) hostStatus {
		return readHostStatus(ctx, cfg, h, targets, dial)
	})
}

func readHostStatus(ctx context.Context, cfg *config.Config, h *config.Host, targets []string, dial func(context.Context, *config.Host) (statusConn, error)) hostStatus {
	var r hostStatus
	readCtx, cancel := context.WithTimeout(ctx, hostReadTimeout)
	defer cancel()
	conn, err := dial(readCtx, h)
	if err != nil {
		r.err = err
		return r
	}
	defer conn.Close()
	r.agent = conn.Hello().AgentVersion
	f, err := conn.Facts(readCtx)
	if err != nil {
		r.err = err
		return r
	}
	r.facts = &f
	// An agent without the health op says so once; the host's other
	// services are then not asked.
	noHealthOp := false
	r.health = map[string]*views.HealthStatus{}
	for i := range f.Services {
		sf := &f.Services[i]
		if targets != nil && !containsFold(targets, sf.Name) {
			continue
		}
		svc := cfg.Service(sf.Name)
		if svc == nil || !slices.Contains(svc.Hosts, h.Name) {
			svc = nil // on its way out: only "running" can be checked
		}
		r.health[strings.ToLower(sf.Name)] = checkHealth(ctx, conn, sf, svc, &noHealthOp)
	}
	return r
}

// quickCheck is the service's configured health check made once, now:
// no healthy_after streak and a short timeout, so status stays quick. No
// health block means healthy when running.
func quickCheck(h *config.Health) protocol.HealthCheck {
	c := protocol.HealthCheck{TimeoutMS: statusHealthTimeout.Milliseconds(), IntervalMS: time.Second.Milliseconds()}
	if h == nil {
		return c
	}
	c.HTTP, c.BodyMatch, c.TCP = h.HTTP, h.BodyMatch, h.TCP
	if h.Interval > time.Second {
		c.IntervalMS = min(h.Interval, statusHealthTimeout).Milliseconds()
	}
	return c
}

// checkHealth asks the agent for one quick check of a running service. A
// service that is not running is unhealthy whatever its check, as the
// agent itself would say, without a round trip.
func checkHealth(ctx context.Context, conn statusConn, sf *protocol.ServiceFacts, svc *config.Service, noHealthOp *bool) *views.HealthStatus {
	if !sf.Installed {
		return nil
	}
	var hc *config.Health
	if svc != nil {
		hc = svc.Health
	}
	check := quickCheck(hc)
	hs := &views.HealthStatus{Kind: check.Kind()}
	switch {
	case sf.Status == nil:
		hs.Status, hs.Detail = views.Unknown, "the service manager did not report its state"
		return hs
	case sf.Status.State != "running":
		hs.Status, hs.Detail = views.Unhealthy, "service "+sf.Status.State
		return hs
	case *noHealthOp:
		hs.Status, hs.Detail = views.Unknown, noHealthOpDetail
		return hs
	}
	callCtx, cancel := context.WithTimeout(ctx, statusHealthTimeout+statusCallSlack)
	defer cancel()
	var res protocol.HealthResult
	if err := conn.Call(callCtx, protocol.OpHealth, protocol.HealthArgs{Service: sf.Name, Check: check}, &res); err != nil {
		hs.Status, hs.Detail = views.Unknown, agentMessage(err)
		if agentCode(err) == protocol.CodeUnknownOp {
			*noHealthOp = true
			hs.Detail = noHealthOpDetail
		}
		return hs
	}
	if res.Kind != "" {
		hs.Kind = res.Kind
	}
	hs.Status, hs.Detail = views.Unhealthy, res.Last
	if res.Healthy {
		hs.Status, hs.Detail = views.Healthy, ""
	}
	return hs
}

const noHealthOpDetail = "this host's agent cannot check health"

// agentCode is the protocol error code of an agent's refusal, or "".
func agentCode(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Code()
	}
	return ""
}

// agentMessage is the agent's own words for a refusal, or the whole
// error when the agent was not the one to refuse.
func agentMessage(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Detail.Message
	}
	return err.Error()
}

// statusView joins facts, health and the plan's steps into what status
// shows: per host, every service the configuration places there and
// every one gsd manages there, sorted by name.
func statusView(cfg *config.Config, p *plan.Plan, results map[string]hostStatus, targets []string, now time.Time) *views.Status {
	st := &views.Status{FormatVersion: views.StatusFormatVersion, CheckedAt: now.UTC(), Hosts: []*views.HostStatus{}}
	for _, hp := range p.Hosts {
		r := results[hp.Host]
		hs := &views.HostStatus{Host: hp.Host, Address: hp.Address, Transport: hp.Transport, AgentVersion: r.agent, Error: hp.Error, Services: []*views.ServiceStatus{}}
		st.Hosts = append(st.Hosts, hs)
		if hp.Error != "" {
			st.Summary.FailedHosts++
			continue
		}
		actual := map[string]*protocol.ServiceFacts{}
		for i := range r.facts.Services {
			actual[strings.ToLower(r.facts.Services[i].Name)] = &r.facts.Services[i]
		}
		for _, step := range hp.Steps {
			if targets != nil && !containsFold(targets, step.Service) {
				continue
			}
			svc := cfg.Service(step.Service)
			inConfig := svc != nil && slices.Contains(svc.Hosts, hp.Host)
			s := serviceStatus(step, svc, inConfig, actual[strings.ToLower(step.Service)], r.health[strings.ToLower(step.Service)])
			hs.Services = append(hs.Services, s)
			st.Summary.Services++
			if s.State == "running" {
				st.Summary.Running++
			}
			if s.Health != nil && s.Health.Status == views.Unhealthy {
				st.Summary.Unhealthy++
			}
			if s.Drift != nil {
				st.Summary.Drifted++
			}
		}
		sort.Slice(hs.Services, func(i, j int) bool {
			return strings.ToLower(hs.Services[i].Service) < strings.ToLower(hs.Services[j].Service)
		})
	}
	return st
}

func serviceStatus(step *plan.Step, svc *config.Service, inConfig bool, sf *protocol.ServiceFacts, health *views.HealthStatus) *views.ServiceStatus {
	s := &views.ServiceStatus{Address: step.Address, Service: step.Service, InConfiguration: inConfig, Health: health}
	if svc != nil {
		s.Mode = svc.Mode
	}
	if sf != nil {
		if sf.Mode != "" {
			s.Mode = sf.Mode
		}
		s.Deployed = sf.Installed
		if sf.Installed && sf.Status != nil {
			s.State, s.PID, s.ExitCode = sf.Status.State, sf.Status.PID, sf.Status.ExitCode
		}
		s.Release, s.Previous = release(sf.Current), release(sf.Previous)
		if sf.Current != nil {
			s.Since = sf.Current.Activated
		}
		if w := sf.Wrapper; w != nil && s.Mode == protocol.ModeWrapped {
			// Starts counts the wrapper's starts of its program since the
			// service itself started; all but the first are restarts.
			restarts := max(w.Starts-1, 0)
			s.Restarts = &restarts
			s.Wrapper = &views.WrapperStatus{Starts: w.Starts, ChildPID: w.ChildPID, LastExitCode: w.LastExitCode, LastExit: w.LastExit, LastStop: w.LastStop}
			if w.ChildPID != 0 {
				// The wrapper records its status when it starts the
				// program and not again until the program exits.
				s.Wrapper.ChildSince = w.Updated
			}
		}
	}
	if step.Action != plan.ActionNoOp {
		d := &views.Drift{Action: string(step.Action)}
		for _, c := range step.Changes {
			// Names only: a value may be a secret.
			if !slices.Contains(d.Attributes, c.Attribute) {
				d.Attributes = append(d.Attributes, c.Attribute)
			}
		}
		s.Drift = d
	}
	return s
}

func release(r *protocol.Release) *views.Release {
	if r == nil {
		return nil
	}
	return &views.Release{ID: r.ID, Version: r.Version, Artifact: r.Artifact, Activated: r.Activated}
}

// containsFold reports whether list holds s, compared as Windows compares
// service names: without regard to case.
func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}
