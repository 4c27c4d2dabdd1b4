package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
)

// Health check bounds. The defaults are config's (DefaultHealthTimeout,
// DefaultHealthInterval), for a client that leaves them out.
const (
	defaultHealthTimeout  = 60 * time.Second
	defaultHealthInterval = 2 * time.Second
	// minProbeTimeout keeps short intervals from failing probes that a
	// loaded host answers a little late.
	minProbeTimeout = time.Second
	// maxHealthBody is how much of an answer body_match looks at: a
	// health endpoint that streams must not make the agent read forever.
	maxHealthBody = 64 << 10
	// stoppedProbesToGiveUp ends a check early once that many probes in a
	// row found the service stopped: nothing restarts a stopped service
	// (the wrapper restarts its program with the service still running),
	// so waiting out the timeout would only delay the rollback. The two
	// intervals in between absorb a start racing the first probe.
	stoppedProbesToGiveUp = 3
	// healthOutputLines is how much of a wrapped service's log a result
	// carries for a failure report.
	healthOutputLines = 20
)

// wsaECONNREFUSED is what Windows sockets answer for a refused connection;
// syscall.ECONNREFUSED is a different, invented number there.
const wsaECONNREFUSED = syscall.Errno(10061)

// opHealth probes a service from the host itself until it has passed for
// HealthyAfter without a failure, or the timeout passes. It is read-only
// and takes no lock, so it can gate a rollout while the host stays
// available to other readers.
func (a *Agent) opHealth(ctx context.Context, req protocol.Request, emit progressFunc) (any, error) {
	var args protocol.HealthArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	if err := protocol.ValidateServiceName(args.Service); err != nil {
		return nil, err
	}
	p, err := newHealthProbe(args.Check)
	if err != nil {
		return nil, err
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	svc, err := a.managedService(st, args.Service)
	if err != nil {
		return nil, err
	}
	if _, err := a.queryInstalled(args.Service); err != nil {
		return nil, err
	}
	res, err := a.checkHealth(ctx, args.Service, svc, p, emit)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// healthProbe is a validated check with its defaults filled in.
type healthProbe struct {
	check        protocol.HealthCheck
	body         *regexp.Regexp
	tcp          string
	timeout      time.Duration
	interval     time.Duration
	healthyAfter time.Duration
	client       *http.Client
}

// newHealthProbe refuses a check that could not be carried out, before
// anything is probed.
func newHealthProbe(c protocol.HealthCheck) (*healthProbe, error) {
	if c.TimeoutMS < 0 || c.IntervalMS < 0 || c.HealthyAfterMS < 0 {
		return nil, failf(protocol.CodeBadRequest, "health: timeout, interval and healthy_after must not be negative")
	}
	p := &healthProbe{
		check:        c,
		timeout:      millisOr(c.TimeoutMS, defaultHealthTimeout),
		interval:     millisOr(c.IntervalMS, defaultHealthInterval),
		healthyAfter: time.Duration(c.HealthyAfterMS) * time.Millisecond,
	}
	if p.healthyAfter >= p.timeout {
		return nil, failf(protocol.CodeBadRequest, "health: healthy_after (%s) must be shorter than the timeout (%s), or no service could pass", p.healthyAfter, p.timeout)
	}
	if c.HTTP != "" && c.TCP != "" {
		return nil, failf(protocol.CodeBadRequest, "health: set http or tcp, not both")
	}
	if c.BodyMatch != "" {
		if c.HTTP == "" {
			return nil, failf(protocol.CodeBadRequest, "health: body_match only applies to an http check")
		}
		re, err := regexp.Compile(c.BodyMatch)
		if err != nil {
			return nil, failf(protocol.CodeBadRequest, "health: body_match: %v", err)
		}
		p.body = re
	}
	if c.HTTP != "" {
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, failf(protocol.CodeBadRequest, "health: http %q is not an http:// or https:// URL", c.HTTP)
		}
		p.client = &http.Client{Transport: &http.Transport{
			// The service is probed where it runs: never through a
			// proxy the host's environment names, and on a fresh
			// connection each time, so a dead listener is noticed.
			Proxy:             nil,
			DisableKeepAlives: true,
		}}
	}
	if c.TCP != "" {
		host, port, err := net.SplitHostPort(c.TCP)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			return nil, failf(protocol.CodeBadRequest, "health: tcp %q is not HOST:PORT", c.TCP)
		}
		if host == "" {
			host = "localhost"
		}
		p.tcp = net.JoinHostPort(host, port)
	}
	return p, nil
}

// millisOr is v milliseconds, or def if v is zero (not given).
func millisOr(v int64, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return time.Duration(v) * time.Millisecond
}

// probeOutcome is one probe's verdict, in the words a report shows.
type probeOutcome struct {
	ok      bool
	message string
	// stopped: the service is stopped or gone, and nothing will bring it
	// back by itself.
	stopped bool
	state   string
}

// checkHealth probes until the service has passed for healthyAfter with no
// failure in between, it has stayed stopped, the timeout passes, or ctx
// ends (then it returns ctx's error at once).
func (a *Agent) checkHealth(ctx context.Context, name string, svc *state.Service, p *healthProbe, emit progressFunc) (*protocol.HealthResult, error) {
	wrapped := svc.Spec.Mode == protocol.ModeWrapped
	start := time.Now()
	deadline := start.Add(p.timeout)
	res := &protocol.HealthResult{Kind: p.check.Kind()}
	var since time.Time
	stopped := 0
	for {
		// Each probe gets the interval, but never less than a second,
		// and not more than is left (unless that is under a second).
		bound := max(min(p.interval, time.Until(deadline)), minProbeTimeout)
		out := a.probe(ctx, name, wrapped, p, bound)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("health check of %s cancelled after %d probes: %w", name, res.Probes, ctx.Err())
		}
		now := time.Now()
		res.Probes++
		if out.message != res.Last {
			emit(fmt.Sprintf("%s: %s", name, out.message), nil)
		}
		res.Last, res.State = out.message, out.state
		if out.ok {
			if since.IsZero() {
				since = now
			}
			if now.Sub(since) >= p.healthyAfter {
				res.Healthy = true
				break
			}
		} else {
			since = time.Time{}
		}
		if out.stopped {
			stopped++
		} else {
			stopped = 0
		}
		if stopped >= stoppedProbesToGiveUp {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		t := time.NewTimer(min(p.interval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("health check of %s cancelled after %d probes: %w", name, res.Probes, ctx.Err())
		case <-t.C:
		}
	}
	if !since.IsZero() {
		res.HealthySince = since.UTC()
	}
	res.ElapsedMS = time.Since(start).Milliseconds()
	if wrapped {
		res.Output = a.recentOutput(name, healthOutputLines)
	}
	return res, nil
}

// probe asks the service manager first: a service that is not running
// fails whatever the kind. A wrapped service stays running while its
// wrapper restarts the program, so there only an http or tcp probe sees
// the program down.
func (a *Agent) probe(ctx context.Context, name string, wrapped bool, p *healthProbe, bound time.Duration) probeOutcome {
	obs, err := a.opts.Services.Query(name)
	switch {
	case err != nil:
		return probeOutcome{message: fmt.Sprintf("cannot query the service manager: %v", err)}
	case !obs.Installed:
		return probeOutcome{message: "service is not installed", stopped: true, state: StateNotInstalled}
	}
	st := obs.Status.State
	switch st {
	case StateRunning:
	case StateStopped:
		msg := "service stopped"
		if obs.Status.ExitCode != 0 {
			msg = fmt.Sprintf("service stopped (exit code %d)", obs.Status.ExitCode)
		}
		return probeOutcome{message: msg, stopped: true, state: st}
	default:
		return probeOutcome{message: "service " + st, state: st}
	}
	pctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var out probeOutcome
	switch {
	case p.client != nil:
		out = p.probeHTTP(pctx, bound)
	case p.tcp != "":
		out = probeTCP(pctx, p.tcp, bound)
	default:
		out = probeOutcome{ok: true, message: "service running"}
	}
	out.state = st
	if !out.ok && wrapped {
		out.message += a.wrappedProgramDown(name)
	}
	return out
}

func (p *healthProbe) probeHTTP(ctx context.Context, bound time.Duration) probeOutcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.check.HTTP, nil)
	if err != nil {
		return probeOutcome{message: err.Error()}
	}
	req.Header.Set("User-Agent", "gsd-agent/"+Version+" health")
	resp, err := p.client.Do(req)
	if err != nil {
		return probeOutcome{message: dialFailure(err, bound)}
	}
	defer resp.Body.Close()
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return probeOutcome{message: status}
	}
	if p.body != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
		if err != nil {
			return probeOutcome{message: fmt.Sprintf("%s, reading the body: %s", status, dialFailure(err, bound))}
		}
		if !p.body.Match(body) {
			return probeOutcome{message: fmt.Sprintf("body does not match %q", p.check.BodyMatch)}
		}
	}
	return probeOutcome{ok: true, message: status}
}

func probeTCP(ctx context.Context, addr string, bound time.Duration) probeOutcome {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return probeOutcome{message: dialFailure(err, bound)}
	}
	conn.Close()
	return probeOutcome{ok: true, message: "connected to " + addr}
}

// dialFailure says in a few words why a probe got no answer.
func dialFailure(err error, bound time.Duration) string {
	var errno syscall.Errno
	var dns *net.DNSError
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == wsaECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %s", bound)
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot resolve %s", dns.Name)
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}

// wrappedProgramDown adds, for a failed probe of a wrapped service, that
// the wrapper reports its program exited and is being restarted, which is
// the usual reason and otherwise invisible (the service stays running).
func (a *Agent) wrappedProgramDown(name string) string {
	ws := servicehost.ReadStatus(a.layout.WrapperStatus(name))
	if ws == nil || ws.ChildPID != 0 || ws.LastExitCode == nil {
		return ""
	}
	return fmt.Sprintf(" (the program exited with code %d; the wrapper restarts it)", *ws.LastExitCode)
}

// recentOutput is the last lines a wrapped service's program wrote, from
// the stream it wrote to last, or the service host's own log if the
// program wrote nothing (it may not have started at all). It is for a
// report, so it is best effort: a log that cannot be read gives none.
func (a *Agent) recentOutput(name string, n int) []string {
	dir := a.layout.LogDir(name)
	if st, err := a.loadState(); err == nil {
		dir = a.logDir(st.Services[name], name)
	}
	base := newestOutput(dir)
	if base == "" {
		base = logStreamFiles[protocol.StreamWrapper]
	}
	lf := logFamily{dir: dir, base: base}
	res, err := lf.tail(n, maxHealthBody)
	if err != nil || len(res.Lines) == 0 {
		return nil
	}
	return res.Lines
}
