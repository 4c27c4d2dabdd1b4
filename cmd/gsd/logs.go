package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
)

func init() {
	register(command{name: "logs", summary: "Print (and with -f follow) a service's output or event log entries from its hosts", run: runLogs})
}

// logsPollInterval is how often -f asks each host for new lines;
// logsCallTimeout is how long a host may take to answer before it is
// reported as no longer answering.
var (
	logsPollInterval = time.Second
	logsCallTimeout  = time.Minute
)

// logsConn is what reading a service's log needs of a host's agent. One
// connection, so one agent session, serves a whole follow.
type logsConn interface {
	Call(ctx context.Context, op string, args, result any) error
	Close() error
}

func runLogs(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "logs", "SERVICE [PATH...]")
	var cf configFlags
	cf.register(fs)
	host := fs.String("host", "", "only this host's log")
	lines := fs.Int("n", 100, "lines to print from the end of the log")
	follow := fs.Bool("f", false, "keep printing new lines until Ctrl-C")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) == 0 {
		fs.Usage()
		return usageError{errors.New("gsd logs needs a service name")}
	}
	if *lines < 0 {
		return fmt.Errorf("-n %d: the number of lines cannot be negative", *lines)
	}
	name := strings.TrimPrefix(positional[0], "service.")
	cfg, err := loadStrict(env, &cf, positional[1:])
	if err != nil {
		return err
	}
	svc, err := findService(cfg, name)
	if err != nil {
		return err
	}
	hosts, err := logHosts(cfg, svc, *host)
	if err != nil {
		return err
	}

	ctx := context.Background()
	if *follow {
		// Ctrl-C ends a follow; it is how one stops reading, not a
		// failure.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		// After the first Ctrl-C a second one ends gsd at once, should
		// closing the sessions hang.
		go func() { <-ctx.Done(); stop() }()
	}
	agent, err := agentBinary(ctx, env)
	if err != nil {
		return err
	}
	return showLogs(ctx, env, svc.Name, hosts, dialHost[logsConn](agent, nil), *lines, *follow)
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (gsd logs api -f), returning the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// findService looks a service up as Windows does, without regard to case,
// and names the configuration's services when there is none.
func findService(cfg *config.Config, name string) (*config.Service, error) {
	var names []string
	for _, s := range cfg.Services {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no service %q: the configuration has no services", name)
	}
	msg := fmt.Sprintf("no service %q in the configuration (its services: %s)", name, strings.Join(names, ", "))
	if s := config.Closest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return nil, errors.New(msg)
}

// logHosts is the service's hosts, or the one -host names.
func logHosts(cfg *config.Config, svc *config.Service, only string) ([]*config.Host, error) {
	if only == "" {
		var out []*config.Host
		for _, n := range svc.Hosts {
			out = append(out, cfg.Host(n))
		}
		return out, nil
	}
	name := strings.TrimPrefix(only, "host.")
	if !slices.Contains(svc.Hosts, name) {
		if cfg.Host(name) == nil {
			return nil, fmt.Errorf("-host %s: no such host in the configuration", only)
		}
		return nil, fmt.Errorf("-host %s: service.%s does not run there (its hosts: %s)", only, svc.Name, strings.Join(svc.Hosts, ", "))
	}
	return []*config.Host{cfg.Host(name)}, nil
}

// hostLog is one host's side of gsd logs: its connection, where its log
// has been read up to, and the error reported for it, if any.
type hostLog struct {
	host   string
	conn   logsConn
	cursor protocol.LogCursor
	err    error
}

// showLogs prints the last lines of the service's log on each host, in
// host order, then with follow prints new lines as they come until ctx
// ends. Lines carry their host's name when there is more than one host. A
// host that fails is reported on stderr and the others go on; gsd then
// exits 1.
func showLogs(ctx context.Context, env *cliEnv, service string, hosts []*config.Host, dial func(context.Context, *config.Host) (logsConn, error), lines int, follow bool) error {
	width := 0
	for _, h := range hosts {
		width = max(width, len(h.Name))
	}
	var outMu sync.Mutex
	emit := func(host string, got []string) {
		var b strings.Builder
		for _, l := range got {
			if len(hosts) > 1 {
				fmt.Fprintf(&b, "%-*s | ", width, host)
			}
			b.WriteString(strings.TrimRight(l, "\r"))
			b.WriteByte('\n')
		}
		outMu.Lock()
		io.WriteString(env.stdout, b.String())
		outMu.Unlock()
	}
	fail := func(hl *hostLog, err error) {
		hl.err = err
		if code := agentCode(err); code == protocol.CodeUnsupported {
			err = fmt.Errorf("service.%s on host %s has no log gsd can read: %s", service, hl.host, agentMessage(err))
		}
		outMu.Lock()
		fmt.Fprintf(env.stderr, "Error: host %s: %v\n", hl.host, err)
		outMu.Unlock()
	}

	// The first read goes to every host at once; its lines are printed
	// host by host, so each host's tail reads as one block.
	logs := make([]*hostLog, len(hosts))
	first := make([][]string, len(hosts))
	firstErr := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		logs[i] = &hostLog{host: h.Name}
		wg.Go(func() {
			hl := logs[i]
			dialCtx, cancel := context.WithTimeout(ctx, hostReadTimeout)
			defer cancel()
			conn, err := dial(dialCtx, h)
			if err != nil {
				firstErr[i] = err
				return
			}
			hl.conn = conn
			// -n 0 still reads one line, for the cursor to follow from.
			var res protocol.LogsResult
			if err := conn.Call(dialCtx, protocol.OpLogs, protocol.LogsArgs{Service: service, Lines: max(lines, 1)}, &res); err != nil {
				firstErr[i] = err
				return
			}
			hl.cursor = res.Cursor
			if lines > 0 {
				first[i] = res.Lines
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, hl := range logs {
			if hl.conn != nil {
				hl.conn.Close()
			}
		}
	}()
	interrupted := false
	for i, hl := range logs {
		switch {
		case firstErr[i] != nil && ctx.Err() != nil:
			interrupted = true // Ctrl-C before the host answered
		case firstErr[i] != nil:
			fail(hl, firstErr[i])
		default:
			emit(hl.host, first[i])
		}
	}

	if follow && !interrupted {
		for i, hl := range logs {
			if firstErr[i] != nil {
				continue
			}
			wg.Go(func() {
				if err := followLog(ctx, hl, service, func(got []string) { emit(hl.host, got) }); err != nil {
					fail(hl, err)
				}
			})
		}
		wg.Wait()
	}
	failed := 0
	for _, hl := range logs {
		if hl.err != nil {
			failed++
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("the log of %d of %d hosts could not be read", failed, len(logs))}
	}
	return nil
}

// followLog asks the host for what was written after the cursor once a
// poll interval, until ctx ends (which is no error) or the host fails.
func followLog(ctx context.Context, hl *hostLog, service string, emit func([]string)) error {
	t := time.NewTicker(logsPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cursor := hl.cursor
		var res protocol.LogsResult
		callCtx, cancel := context.WithTimeout(ctx, logsCallTimeout)
		err := hl.conn.Call(callCtx, protocol.OpLogs, protocol.LogsArgs{Service: service, After: &cursor}, &res)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		hl.cursor = res.Cursor
		emit(res.Lines)
	}
}
