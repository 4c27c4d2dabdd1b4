package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
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
	st, err := makeStatus(ctx, cfg, arts, hostsRunning(cfg, hosts, targets), targets, dialHost[statusConn](agent, nil), sel.parallelism, time.Now())
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
// the targeted services or tasks on; with no -target every host is
// asked.
func hostsRunning(cfg *config.Config, hosts []*config.Host, targets []string) []*config.Host {
	if targets == nil {
		return hosts
	}
	var out []*config.Host
	for _, h := range hosts {
		for _, t := range targets {
			if on, ok := cfg.HostsOf(t); ok && slices.Contains(on, h.Name) {
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
	return views.NewStatus(cfg, p, readings(results), targets, now), nil
}

// readings are the hosts' readings as the status view model takes them.
func readings(results map[string]hostStatus) map[string]views.HostReading {
	out := make(map[string]views.HostReading, len(results))
	for name, r := range results {
		out[name] = views.HostReading{Facts: r.facts, Agent: r.agent, Health: r.health}
	}
	return out
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
		if targets != nil && !views.ContainsFold(targets, sf.Name) {
			continue
		}
		svc := cfg.Service(sf.Name)
		if svc == nil || !slices.Contains(svc.Hosts, h.Name) {
			svc = nil // on its way out: only "running" can be checked
		} else {
			svc = svc.On(h.Name)
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
