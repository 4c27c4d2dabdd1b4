package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/transport"
)

func init() {
	register(command{name: "hosts", summary: "Check that every host is reachable and its agent answers", run: runHosts})
}

// hostResult is what reaching one host gave: its facts and whether its
// agent had to be installed, or the error that stopped it.
type hostResult struct {
	facts     *protocol.Facts
	installed bool
	agent     string
	way       transport.Description
	err       error
}

// factsConn is what reading a host needs of its connection.
type factsConn interface {
	Facts(ctx context.Context) (protocol.Facts, error)
	Installed() bool
	Hello() protocol.Hello
	Describe() transport.Description
	Close() error
}

// hostReadTimeout bounds reaching one host and reading its facts,
// installing the agent included.
const hostReadTimeout = 5 * time.Minute

// dialHost is the one way every command reaches a host's agent, with the
// real transports; C is the part of the connection a command uses (its
// tests give fakes of it). progress, if set, gets what the agent says.
func dialHost[C any](agent providers.Agent, progress func(protocol.Event)) func(context.Context, *config.Host) (C, error) {
	return func(ctx context.Context, h *config.Host) (C, error) {
		var none C
		conn, err := providers.Dial(ctx, h, providers.Options{Agent: agent, Progress: progress, Checked: &agentChecked})
		if err != nil {
			return none, err
		}
		c, ok := any(conn).(C)
		if !ok {
			conn.Close()
			return none, fmt.Errorf("host %s: the connection lacks what this command needs", h.Name)
		}
		return c, nil
	}
}

// agentChecked spares later sessions of this run the bootstrap's check of
// a host's agent binary (see providers.Checked).
var agentChecked providers.Checked

// dialFacts reaches a host to read its facts.
func dialFacts(agent providers.Agent) func(context.Context, *config.Host) (factsConn, error) {
	return dialHost[factsConn](agent, nil)
}

// dialFactsToPlan is dialFacts for planning: each host is also asked
// whether it can use the group managed service accounts its services are
// to run as (plan.FactsArgs).
func dialFactsToPlan(agent providers.Agent, cfg *config.Config) func(context.Context, *config.Host) (factsConn, error) {
	return func(ctx context.Context, h *config.Host) (factsConn, error) {
		return providers.Dial(ctx, h, providers.Options{Agent: agent, FactsArgs: plan.FactsArgs(cfg, h.Name), Checked: &agentChecked})
	}
}

// readHosts reaches every host, at most parallelism at a time, and reads
// its facts in one agent round trip, however many services it runs. An
// unreachable host fails alone.
func readHosts(ctx context.Context, hosts []*config.Host, dial func(context.Context, *config.Host) (factsConn, error), parallelism int) map[string]hostResult {
	return eachHost(hosts, parallelism, func(h *config.Host) hostResult {
		r := hostResult{}
		// A host that stops answering fails alone, in bounded time.
		ctx, cancel := context.WithTimeout(ctx, hostReadTimeout)
		defer cancel()
		conn, err := dial(ctx, h)
		if err != nil {
			r.err = err
			return r
		}
		defer conn.Close()
		r.installed = conn.Installed()
		r.agent = conn.Hello().AgentVersion
		f, err := conn.Facts(ctx)
		if err != nil {
			r.err = err
		} else {
			r.facts = &f
		}
		// After the facts: a Receive has shown what the host allows.
		r.way = conn.Describe()
		return r
	})
}

// eachHost runs read for every host, at most parallelism at a time, and
// collects the results by host name.
func eachHost[R any](hosts []*config.Host, parallelism int, read func(*config.Host) R) map[string]R {
	out := make(map[string]R, len(hosts))
	var mu sync.Mutex
	apply.ForEach(len(hosts), parallelism, func(i int) {
		r := read(hosts[i])
		mu.Lock()
		out[hosts[i].Name] = r
		mu.Unlock()
	})
	return out
}

func hostFacts(results map[string]hostResult) map[string]plan.HostFacts {
	out := make(map[string]plan.HostFacts, len(results))
	for name, r := range results {
		out[name] = plan.HostFacts{Facts: r.facts, Err: r.err}
	}
	return out
}

// writeHostCheck reports what reaching one host found: how it was
// reached (listener, authentication, encryption, TLS) and its agent.
func writeHostCheck(w io.Writer, name string, h *config.Host, r hostResult) {
	if r.err != nil {
		fmt.Fprintf(w, "host.%s  %s  FAILED: %v\n", name, h.Transport(), r.err)
		return
	}
	others := ""
	if n := len(r.facts.Resources); n > 0 {
		others = fmt.Sprintf(", %d other managed resources", n)
	}
	fmt.Fprintf(w, "host.%s  %s  ok: agent %s on %s, %d managed services%s\n", name, h.Transport(), r.agent, r.facts.Host.Machine, len(r.facts.Services), others)
	agent := "this build was already on the host"
	if r.installed {
		agent = "installed now"
	}
	if l := r.facts.Lock; l != nil {
		agent += fmt.Sprintf("; locked by %s on %s since %s", l.User, l.Machine, l.Since.Format(time.RFC3339))
	}
	if r.facts.Journal != nil {
		agent += "; an interrupted apply awaits recovery (the next gsd apply finishes it)"
	}
	for _, row := range [][2]string{
		{"listener", r.way.Listener}, {"auth", r.way.Auth}, {"encryption", r.way.Encryption},
		{"tls", r.way.TLS}, {"agent", agent},
	} {
		if row[1] != "" {
			fmt.Fprintf(w, "  %-11s %s\n", row[0], row[1])
		}
	}
	for _, note := range r.way.Notes {
		fmt.Fprintf(w, "  note        %s\n", note)
	}
}

func runHosts(env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return groupHelp(env, "hosts", args)
	}
	fs := newFlagSet(env, "hosts check", "[PATH...]")
	var cf configFlags
	cf.register(fs)
	var sel selectFlags
	sel.registerHosts(fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadStrict(env, &cf, fs.Args())
	if err != nil {
		return err
	}
	hosts, err := sel.hosts(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	results := readHosts(ctx, hosts, dialFacts(agent), sel.parallelism)
	if *asJSON {
		return hostsCheckJSON(env, cfg, results)
	}
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	failed := 0
	for _, n := range names {
		r := results[n]
		if r.err != nil {
			failed++
		}
		writeHostCheck(env.stdout, n, cfg.Host(n), r)
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d hosts could not be reached", failed, len(names))}
	}
	return nil
}
