package providers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-deploy/gsd/agent/bootstrap"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// AgentRoot is gsd's folder on a host; the bootstrap keeps it owned by
// Administrators and closed to everyone else before it writes there.
const AgentRoot = `C:\ProgramData\gsd`

// AgentDir is where agents live on a host, one directory per build named
// by its SHA-256, so a host can hold several and a new build never
// overwrites one that runs.
const AgentDir = AgentRoot + `\bin`

// Agent is the gsd-agent.exe build gsd installs and talks to.
type Agent struct {
	SHA256 string // lowercase hex
	Size   int64
	// Open returns the binary. It is called only when a host lacks this
	// build, and again for each retry.
	Open func() (io.ReadCloser, error)
}

// AgentFromFile describes the agent binary at path.
func AgentFromFile(path string) (Agent, error) {
	f, err := os.Open(path)
	if err != nil {
		return Agent{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Agent{}, err
	}
	return Agent{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Open: func() (io.ReadCloser, error) { return os.Open(path) }}, nil
}

// AgentFromBytes describes an agent binary held in memory (an embedded
// release build).
func AgentFromBytes(b []byte) Agent {
	sum := sha256.Sum256(b)
	return Agent{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// Path is where this build lives on a host.
func (a Agent) Path() string { return AgentDir + `\` + a.SHA256 + `\gsd-agent.exe` }

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Options tune Connect.
type Options struct {
	Agent Agent
	// Retries is how often an upload interrupted by a broken connection
	// or a timeout is started again (2 when 0; -1 for none).
	Retries int
	// Progress, if set, receives the agent's progress events.
	Progress func(protocol.Event)
	// Heartbeat is how often the session tells its agent that gsd is
	// still there (DefaultHeartbeat when 0; -1 for never): an agent that
	// hears nothing for protocol.HeartbeatMisses of them finishes what it
	// does, releases the host's lock and exits.
	Heartbeat time.Duration
	// FactsArgs go with every facts request (the accounts to check).
	FactsArgs protocol.FactsArgs
	// Checked, when set, remembers the hosts whose agent binary was
	// checked (see Checked); nil checks before every session.
	Checked *Checked
}

// Checked remembers, for one run of gsd, the hosts on which the bootstrap
// has secured the root and checked the agent binary. Later sessions of
// the same run start the agent without checking again: once the root is
// secured, only an administrator can change the binary.
type Checked struct{ m sync.Map }

func (c *Checked) key(host, sha string) string { return host + "\x00" + sha }

func (c *Checked) has(host, sha string) bool {
	if c == nil {
		return false
	}
	_, ok := c.m.Load(c.key(host, sha))
	return ok
}

func (c *Checked) add(host, sha string) {
	if c != nil {
		c.m.Store(c.key(host, sha), true)
	}
}

// DefaultHeartbeat is the heartbeat interval of agent sessions: an agent
// whose gsd died releases the host within 3 of them (15 s) of its last
// operation ending.
const DefaultHeartbeat = 5 * time.Second

func (o Options) heartbeat() time.Duration {
	switch {
	case o.Heartbeat < 0:
		return 0
	case o.Heartbeat == 0:
		return DefaultHeartbeat
	}
	return o.Heartbeat
}

func (o Options) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return 2
	}
	return o.Retries
}

// Error is a failure on one host, naming the step gsd was taking.
type Error struct {
	Host string // the host's name in the configuration
	Step string // e.g. "starting the agent", "staging api.exe"
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("host %s: %s: %v", e.Host, e.Step, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Host is a connection to one host's agent. Its methods are safe for
// concurrent use; the agent serves one request at a time.
type Host struct {
	name string
	t    transport.Transport
	opts Options

	mu     sync.Mutex
	proc   transport.Process
	client *client.Client
	// beats ends the session's heartbeats.
	beats context.CancelFunc
	hello protocol.Hello
	held  map[string]bool // artifacts the host holds, from facts and stages
	// installed is set when Connect uploaded the agent.
	installed bool
	// repairs are what the bootstrap found wrong and put right, for
	// facts (protocol.HostFacts.Repairs).
	repairs []string
	sent    atomic.Int64
}

// missingMarker is what the start command prints when the agent build is
// not on the host, in place of the agent's hello.
const missingMarker = "gsd-agent-missing"

// Connect reaches the agent on the host behind t. The agent binary is
// checked against its SHA-256 before it runs, by the bootstrap (which
// secures gsd's root folder first), and installed when the host lacks it
// or holds other bytes under its name. The Host owns t from then on.
func Connect(ctx context.Context, name string, t transport.Transport, opts Options) (*Host, error) {
	if !shaRE.MatchString(opts.Agent.SHA256) || opts.Agent.Open == nil {
		return nil, fmt.Errorf("host %s: no usable agent build (SHA-256 %q)", name, opts.Agent.SHA256)
	}
	h := &Host{name: name, t: t, opts: opts}
	if err := h.startChecked(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return h, nil
}

// startChecked checks the agent binary, installs it when it is missing
// or not what its name promises, and starts it.
func (h *Host) startChecked(ctx context.Context) error {
	if !h.opts.Checked.has(h.name, h.opts.Agent.SHA256) {
		ok, err := h.checkAgent(ctx)
		if err != nil {
			return err
		}
		if !ok {
			if err := h.install(ctx); err != nil {
				return err
			}
			h.installed = true
		}
		h.opts.Checked.add(h.name, h.opts.Agent.SHA256)
	}
	missing, err := h.startAgent(ctx)
	if err == nil && missing {
		err = h.fail("starting the agent", fmt.Errorf("%s is missing right after the bootstrap checked it", h.opts.Agent.Path()))
	}
	return err
}

func (h *Host) bootstrapParams() bootstrap.Params {
	return bootstrap.Params{Root: AgentRoot, Path: h.opts.Agent.Path(), SHA256: h.opts.Agent.SHA256}
}

// checkAgent runs the bootstrap with nothing to write: it secures the
// root, and succeeds only if the agent binary is there with its SHA-256.
func (h *Host) checkAgent(ctx context.Context) (ok bool, err error) {
	err = h.retry(ctx, func() error {
		notes, err := runBootstrap(ctx, h.t, h.bootstrapParams(), func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil })
		h.noteRepairs(notes, false)
		var nip *notInPlaceError
		ok = err == nil
		if errors.As(err, &nip) {
			err = nil
		}
		return err
	})
	if err != nil {
		return false, h.fail("checking the agent", err)
	}
	return ok, nil
}

// noteRepairs keeps what the bootstrap said it found wrong; installed
// says the right agent is in place now.
func (h *Host) noteRepairs(notes []string, installed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range notes {
		if installed && strings.Contains(n, " had SHA-256 ") {
			n += "; gsd installed its own build there again"
		} else if !installed && strings.Contains(n, " had SHA-256 ") {
			continue // said again, with the outcome, by the install
		}
		if !slices.Contains(h.repairs, n) {
			h.repairs = append(h.repairs, n)
		}
	}
}

// Installed reports whether Connect had to upload the agent.
func (h *Host) Installed() bool { return h.installed }

// Hello is what the agent announced.
func (h *Host) Hello() protocol.Hello {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hello
}

// SentBytes counts what was written to the agent's standard input, for
// checking that held artifacts are not sent again.
func (h *Host) SentBytes() int64 { return h.sent.Load() }

func (h *Host) fail(step string, err error) error {
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	return &Error{Host: h.name, Step: step, Err: err}
}

// errExitedEarly marks an agent that ended before its hello.
var errExitedEarly = errors.New("exited before saying hello")

// startAgent starts the agent build, or reports it missing. An agent that
// ends before its hello is started once more: process creation can fail
// transiently on a loaded host (Wine's cmd.exe does, under load), and a
// real fault shows again.
func (h *Host) startAgent(ctx context.Context) (missing bool, err error) {
	missing, err = h.startAgentOnce(ctx)
	if errors.Is(err, errExitedEarly) && ctx.Err() == nil {
		missing, err = h.startAgentOnce(ctx)
	}
	return missing, err
}

// startAgentOnce runs the agent build, or reports it missing. One command
// does both so the usual case costs no extra round trip.
func (h *Host) startAgentOnce(ctx context.Context) (missing bool, err error) {
	path := h.opts.Agent.Path()
	line := fmt.Sprintf(`if exist "%[1]s" ("%[1]s" serve) else (echo %[2]s)`, path, missingMarker)
	// The session lives until Close, not until the caller's context ends.
	p, err := h.t.Start(context.WithoutCancel(ctx), line)
	if err != nil {
		return false, h.fail("starting the agent", err)
	}
	type lineResult struct {
		first string
		out   io.Reader
		err   error
	}
	got := make(chan lineResult, 1)
	go func() {
		first, out, err := firstLine(p.Stdout(), 64<<10)
		got <- lineResult{first, out, err}
	}()
	var first string
	var out io.Reader
	select {
	case r := <-got:
		first, out, err = r.first, r.out, r.err
	case <-ctx.Done():
		// An agent that never says hello must not hold the caller
		// beyond its deadline.
		p.Close()
		return false, h.fail("starting the agent", fmt.Errorf("no hello from %s: %w", path, ctx.Err()))
	}
	if strings.TrimSpace(first) == missingMarker {
		p.Close()
		return true, nil
	}
	if err != nil && first == "" {
		code, werr := p.Wait()
		p.Close()
		if werr != nil {
			return false, h.fail("starting the agent", werr)
		}
		return false, h.fail("starting the agent", fmt.Errorf("%s %w (exit code %d)%s", path, errExitedEarly, code, stderrNote(p.Stderr())))
	}
	stdin := &countingWriter{w: p.Stdin(), n: &h.sent}
	c, err := client.New(out, stdin)
	if err != nil {
		p.Close()
		return false, h.fail("starting the agent", fmt.Errorf("%w%s", err, stderrNote(p.Stderr())))
	}
	c.Progress = h.opts.Progress
	beats, stop := context.WithCancel(context.Background())
	c.Heartbeat(beats, h.opts.heartbeat())
	h.mu.Lock()
	h.proc, h.client, h.hello, h.beats = p, c, c.Hello(), stop
	h.mu.Unlock()
	return false, nil
}

func stderrNote(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return "; its error output: " + s
}

// install uploads the agent through the bootstrap, which verifies the
// SHA-256 before renaming it into place; retried on broken connections
// and timeouts, since a partial upload never becomes the file.
func (h *Host) install(ctx context.Context) error {
	a := h.opts.Agent
	step := "installing the agent (" + a.SHA256[:12] + ")"
	err := h.retry(ctx, func() error {
		notes, err := Upload(ctx, h.t, h.bootstrapParams(), a.Open)
		if err == nil {
			h.noteRepairs(notes, true)
		}
		return err
	})
	if err != nil {
		return h.fail(step, err)
	}
	return nil
}

func (h *Host) retry(ctx context.Context, attempt func() error) error {
	var err error
	for i := 0; i <= h.opts.retries(); i++ {
		if err = attempt(); err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// retryable errors are those a new attempt may not meet: a broken
// connection or a host that was slow to answer.
func retryable(err error) bool {
	return errors.Is(err, transport.ErrBroken) || errors.Is(err, transport.ErrTimeout)
}

// Upload streams a file to p.Path on the host through the bootstrap,
// which secures p.Root, writes the file beside its place, checks its
// SHA-256, and only then renames it into place. notes are what the
// bootstrap found wrong and put right.
func Upload(ctx context.Context, t transport.Transport, p bootstrap.Params, open func() (io.ReadCloser, error)) (notes []string, err error) {
	notes, err = runBootstrap(ctx, t, p, open)
	var nip *notInPlaceError
	if errors.As(err, &nip) {
		err = fmt.Errorf("the host received bytes with a different SHA-256 than %s, so nothing was installed%s", p.SHA256, nip.stderr)
	}
	return notes, err
}

// notInPlaceError is the bootstrap's exit code 3: the bytes it read did
// not have the SHA-256, so nothing was written.
type notInPlaceError struct{ stderr string }

func (e *notInPlaceError) Error() string { return "the file is not in place" + e.stderr }

// runBootstrap runs the bootstrap for p with open's bytes as its input.
// A *notInPlaceError says the file did not end up with its SHA-256
// (nothing was written then); notes are the bootstrap's other lines.
func runBootstrap(ctx context.Context, t transport.Transport, p bootstrap.Params, open func() (io.ReadCloser, error)) (notes []string, err error) {
	line, err := bootstrap.CommandLine(p)
	if err != nil {
		return nil, err
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res, err := transport.Run(ctx, t, line, r, 4096)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, bootstrap.NotePrefix) && !strings.HasPrefix(l, bootstrap.OKPrefix) {
			notes = append(notes, strings.TrimPrefix(l, bootstrap.NotePrefix))
		}
	}
	switch {
	case res.ExitCode == bootstrap.ExitHashMismatch:
		return notes, &notInPlaceError{stderr: stderrNote(res.Stderr)}
	case res.ExitCode != bootstrap.ExitOK:
		return notes, fmt.Errorf("the bootstrap failed with exit code %d%s", res.ExitCode, stderrNote(res.Stderr))
	case !strings.Contains(string(res.Stdout), bootstrap.OKPrefix+p.SHA256):
		return notes, fmt.Errorf("the bootstrap did not confirm SHA-256 %s (output %q)", p.SHA256, strings.TrimSpace(string(res.Stdout)))
	}
	return notes, nil
}

// Facts gathers the host's facts in one round trip.
func (h *Host) Facts(ctx context.Context) (protocol.Facts, error) {
	var f protocol.Facts
	var args any
	if len(h.opts.FactsArgs.Accounts) > 0 {
		args = h.opts.FactsArgs
	}
	err := h.call(ctx, "gathering facts", protocol.OpFacts, args, &f)
	if err == nil {
		h.mu.Lock()
		f.Host.Repairs = append(slices.Clone(h.repairs), f.Host.Repairs...)
		h.held = map[string]bool{}
		for _, a := range f.Artifacts {
			h.held[a] = true
		}
		h.mu.Unlock()
	}
	return f, err
}

// Call sends one request to the agent.
func (h *Host) Call(ctx context.Context, op string, args, result any) error {
	return h.call(ctx, op, op, args, result)
}

func (h *Host) call(ctx context.Context, step, op string, args, result any) error {
	c, err := h.session(ctx)
	if err != nil {
		return err
	}
	if err := h.bounded(ctx, func() error { return c.Call(op, args, result) }); err != nil {
		if ctx.Err() != nil {
			return h.fail(step, fmt.Errorf("gave up waiting for the agent: %w", ctx.Err()))
		}
		return h.fail(step, h.sessionError(err))
	}
	return nil
}

// bounded runs f, one exchange with the agent, and gives up when ctx
// ends: the agent client itself cannot be interrupted, so the session is
// ended, which also unblocks f; the next call starts a new agent. Without
// this a host that stops answering would hang gsd, and a second Ctrl-C
// could not abort it.
func (h *Host) bounded(ctx context.Context, f func() error) error {
	if ctx.Done() == nil {
		return f()
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		h.endSession()
		return ctx.Err()
	}
}

// endSession closes the agent's process without waiting for it.
func (h *Host) endSession() {
	h.mu.Lock()
	p := h.proc
	h.proc, h.client = nil, nil
	h.stopBeats()
	h.mu.Unlock()
	if p != nil {
		p.Stdin().Close()
		p.Close()
	}
}

// session returns the agent client, restarting the agent when an earlier
// failure ended the session.
func (h *Host) session(ctx context.Context) (*client.Client, error) {
	h.mu.Lock()
	c := h.client
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	// The binary is checked again before it runs again.
	if err := h.startChecked(ctx); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.client, nil
}

// sessionError ends the session after any failure that is not the
// agent's own answer: the stream is then in an unknown state, and the
// next call starts a new agent.
func (h *Host) sessionError(err error) error {
	var agentErr *client.Error
	if errors.As(err, &agentErr) {
		return err
	}
	h.mu.Lock()
	p := h.proc
	h.proc, h.client = nil, nil
	h.stopBeats()
	h.mu.Unlock()
	if p == nil {
		return err
	}
	p.Stdin().Close()
	p.Close()
	if transportKind(err) {
		return err
	}
	// The agent client only saw its streams end; the transport knows
	// why (a broken connection, a host that stopped answering), or the
	// agent said so on its error output.
	code, werr := p.Wait()
	if transportKind(werr) {
		return werr
	}
	if werr == nil {
		return fmt.Errorf("%w; the agent exited with code %d%s", err, code, stderrNote(p.Stderr()))
	}
	return err
}

func transportKind(err error) bool {
	for _, k := range []error{transport.ErrBroken, transport.ErrTimeout, transport.ErrUnreachable, transport.ErrAuth, transport.ErrTrust} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// Artifact is a file to stage on a host.
type Artifact struct {
	Name   string // file name in its content-addressed directory, e.g. api.exe
	SHA256 string
	Size   int64
	Open   func() (io.ReadCloser, error)
}

// Stage makes sure the host holds a. An artifact the host already holds
// is not sent; an interrupted upload starts again in a new agent session
// (the agent keeps nothing of a broken stream).
func (h *Host) Stage(ctx context.Context, a Artifact) (protocol.StageResult, error) {
	step := "staging " + a.Name
	h.mu.Lock()
	known := h.held != nil
	held := h.held[a.SHA256]
	h.mu.Unlock()
	if !known {
		if _, err := h.Facts(ctx); err != nil {
			return protocol.StageResult{}, err
		}
		h.mu.Lock()
		held = h.held[a.SHA256]
		h.mu.Unlock()
	}
	if held {
		return protocol.StageResult{SHA256: a.SHA256, Size: a.Size, AlreadyPresent: true}, nil
	}
	var res protocol.StageResult
	err := h.retry(ctx, func() error {
		r, err := a.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		c, err := h.session(ctx)
		if err != nil {
			return err
		}
		// The result is kept only from an exchange that finished; one
		// given up on may still be running.
		got := make(chan protocol.StageResult, 1)
		err = h.bounded(ctx, func() error {
			r, serr := c.Stage(a.SHA256, a.Size, a.Name, r)
			got <- r
			return serr
		})
		if err == nil {
			res = <-got
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("gave up waiting for the agent: %w", ctx.Err())
			}
			return h.sessionError(err)
		}
		return nil
	})
	if err != nil {
		return res, h.fail(step, err)
	}
	h.mu.Lock()
	h.held[a.SHA256] = true
	h.mu.Unlock()
	return res, nil
}

// Close ends the agent session (the agent exits at the end of its input)
// and the transport.
func (h *Host) Close() error {
	h.mu.Lock()
	p := h.proc
	h.proc, h.client = nil, nil
	h.stopBeats()
	h.mu.Unlock()
	if p != nil {
		p.Stdin().Close()
		p.Close()
	}
	return h.t.Close()
}

// stopBeats ends the session's heartbeats; h.mu is held.
func (h *Host) stopBeats() {
	if h.beats != nil {
		h.beats()
		h.beats = nil
	}
}

type countingWriter struct {
	w io.WriteCloser
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// firstLine splits off the first line of what r produces and returns a
// reader that gives everything, the first line included, again.
func firstLine(r io.Reader, limit int) (string, io.Reader, error) {
	var line bytes.Buffer
	b := make([]byte, 1)
	for line.Len() < limit {
		n, err := r.Read(b)
		if n == 1 {
			line.WriteByte(b[0])
			if b[0] == '\n' {
				break
			}
		}
		if err != nil {
			return line.String(), io.MultiReader(bytes.NewReader(line.Bytes()), r), err
		}
	}
	return line.String(), io.MultiReader(bytes.NewReader(line.Bytes()), r), nil
}
