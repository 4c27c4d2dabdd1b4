package providers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/bootstrap"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// fakeHost is a Transport that understands exactly the two command lines
// Host sends: the agent start (served by an in-process agent) and the
// bootstrap (performed in memory, with its checks: a file already in
// place with its SHA-256 is kept and stdin dropped).
type fakeHost struct {
	t     *testing.T
	root  string
	mu    sync.Mutex
	files map[string][]byte // Windows path → content
	// corrupt flips a byte of every upload, as a damaged link would.
	corrupt bool
	// noHello makes the agent exit at once with an error message.
	noHello bool
	// mute makes the agent say hello and then never answer.
	mute    bool
	uploads int
	starts  int // agent start commands
	boots   int // bootstrap commands, checks included
}

var startRE = regexp.MustCompile(`^if exist "([^"]+)" \("([^"]+)" serve\) else \(echo ` + missingMarker + `\)$`)

func (f *fakeHost) Start(ctx context.Context, line string) (transport.Process, error) {
	p := newFakeProcess()
	if params, err := bootstrap.Parse(line); err == nil {
		f.mu.Lock()
		f.boots++
		f.mu.Unlock()
		go func() {
			f.mu.Lock()
			have, exists := f.files[params.Path]
			f.mu.Unlock()
			if sum := sha256.Sum256(have); exists && hex.EncodeToString(sum[:]) == params.SHA256 {
				io.Copy(io.Discard, p.inR)
				fmt.Fprintf(p.outW, "%s%s\r\n", bootstrap.OKPrefix, params.SHA256)
				p.exit(0)
				return
			} else if exists {
				fmt.Fprintf(p.outW, "%s%s had SHA-256 %s, not %s\r\n", bootstrap.NotePrefix, params.Path, hex.EncodeToString(sum[:]), params.SHA256)
			}
			b, _ := io.ReadAll(p.inR)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(b) > 0 {
				f.uploads++
			}
			if f.corrupt && len(b) > 0 {
				b[0] ^= 1
			}
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != params.SHA256 {
				fmt.Fprintf(&p.stderr, "gsd-bootstrap: sha256 mismatch: want %s, got %s\r\n", params.SHA256, got)
				p.exit(bootstrap.ExitHashMismatch)
				return
			}
			f.files[params.Path] = b
			fmt.Fprintf(p.outW, "%s%s\r\n", bootstrap.OKPrefix, params.SHA256)
			p.exit(0)
		}()
		return p, nil
	}
	m := startRE.FindStringSubmatch(line)
	if m == nil || m[1] != m[2] {
		return nil, fmt.Errorf("fake host: unexpected command %q", line)
	}
	f.mu.Lock()
	_, ok := f.files[m[1]]
	f.starts++
	f.mu.Unlock()
	go func() {
		switch {
		case !ok:
			fmt.Fprintf(p.outW, "%s\r\n", missingMarker)
			p.exit(0)
		case f.mute:
			fmt.Fprintf(p.outW, `{"event":"hello","hello":{"agent_version":"mute","protocol_version":%d,"max_line_bytes":4194304,"os":"windows"}}`+"\n", protocol.Version)
			io.Copy(io.Discard, p.inR)
			p.exit(0)
		case f.noHello:
			fmt.Fprint(&p.stderr, "gsd-agent serve: cannot create C:\\ProgramData\\gsd: Access is denied.\r\n")
			p.exit(1)
		default:
			a := agent.New(agent.Options{Root: f.root, Services: scm.New()})
			err := a.Serve(context.Background(), p.inR, p.outW)
			if err != nil {
				fmt.Fprintln(&p.stderr, err)
			}
			p.exit(0)
		}
	}()
	return p, nil
}

func (f *fakeHost) Close() error { return nil }

type fakeProcess struct {
	inR    *io.PipeReader
	inW    *io.PipeWriter
	outR   *io.PipeReader
	outW   *io.PipeWriter
	stderr transport.TailBuffer
	done   chan struct{}
	code   int
	once   sync.Once
}

func newFakeProcess() *fakeProcess {
	p := &fakeProcess{done: make(chan struct{})}
	p.inR, p.inW = io.Pipe()
	p.outR, p.outW = io.Pipe()
	return p
}

func (p *fakeProcess) exit(code int) {
	p.once.Do(func() {
		p.code = code
		p.outW.Close()
		p.inR.CloseWithError(errors.New("process exited"))
		close(p.done)
	})
}

func (p *fakeProcess) Stdin() io.WriteCloser { return p.inW }
func (p *fakeProcess) Stdout() io.Reader     { return p.outR }
func (p *fakeProcess) Stderr() []byte        { return p.stderr.Bytes() }
func (p *fakeProcess) Wait() (int, error)    { <-p.done; return p.code, nil }
func (p *fakeProcess) Close() error {
	p.inW.Close()
	p.outR.Close()
	return nil
}

func newFakeHost(t *testing.T) *fakeHost {
	return &fakeHost{t: t, root: t.TempDir(), files: map[string][]byte{}}
}

var (
	agentBytes = []byte("MZ this stands for gsd-agent.exe")
	testAgent  = AgentFromBytes(agentBytes)
)

func TestConnectInstallsOnceThenFinds(t *testing.T) {
	f := newFakeHost(t)
	ctx := context.Background()
	h, err := Connect(ctx, "web1", f, Options{Agent: testAgent})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Installed() || f.uploads != 1 {
		t.Fatalf("installed %v after %d uploads", h.Installed(), f.uploads)
	}
	if !bytes.Equal(f.files[testAgent.Path()], []byte("MZ this stands for gsd-agent.exe")) {
		t.Error("the agent was not stored at its content-addressed path")
	}
	h.Close()

	h, err = Connect(ctx, "web1", f, Options{Agent: testAgent})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Installed() || f.uploads != 1 {
		t.Errorf("second connection: installed %v, %d uploads", h.Installed(), f.uploads)
	}

	content := []byte("artifact bytes")
	sum := sha256.Sum256(content)
	art := Artifact{Name: "api.exe", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}}
	if res, err := h.Stage(ctx, art); err != nil || res.AlreadyPresent {
		t.Fatalf("stage: %+v %v", res, err)
	}
	before := h.SentBytes()
	if res, err := h.Stage(ctx, art); err != nil || !res.AlreadyPresent {
		t.Fatalf("second stage: %+v %v", res, err)
	}
	if h.SentBytes() != before {
		t.Error("a held artifact was sent again")
	}
}

// A binary with the agent's name but other bytes (planted, or damaged) is
// never run: it is installed again, and facts say so.
func TestPlantedAgentIsReplacedBeforeItRuns(t *testing.T) {
	f := newFakeHost(t)
	f.files[testAgent.Path()] = []byte("MZ something else entirely")
	h, err := Connect(context.Background(), "web1", f, Options{Agent: testAgent})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !h.Installed() || f.uploads != 1 || !bytes.Equal(f.files[testAgent.Path()], agentBytes) {
		t.Fatalf("installed %v, %d uploads, file %q", h.Installed(), f.uploads, f.files[testAgent.Path()])
	}
	facts, err := h.Facts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(facts.Host.Repairs) == 0 || !strings.Contains(facts.Host.Repairs[0], testAgent.Path()+" had SHA-256 ") || !strings.Contains(facts.Host.Repairs[0], "installed its own build there again") {
		t.Fatalf("repairs %q", facts.Host.Repairs)
	}
}

// Within one run the agent binary is checked once per host: later
// sessions trust that check, which secured the root.
func TestAgentCheckedOncePerRun(t *testing.T) {
	f := newFakeHost(t)
	var checked Checked
	for i, want := range []int{2, 2, 3} {
		opts := Options{Agent: testAgent, Checked: &checked}
		if i == 2 {
			opts.Checked = nil // another run
		}
		h, err := Connect(context.Background(), "web1", f, opts)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		if f.boots != want {
			t.Fatalf("connection %d: %d bootstrap runs, want %d", i+1, f.boots, want)
		}
	}
}

func TestConnectCorruptUpload(t *testing.T) {
	f := newFakeHost(t)
	f.corrupt = true
	_, err := Connect(context.Background(), "web1", f, Options{Agent: testAgent})
	if err == nil {
		t.Fatal("a corrupted upload was accepted")
	}
	for _, want := range []string{"host web1: installing the agent", "different SHA-256", "sha256 mismatch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(f.files) != 0 {
		t.Error("a corrupted upload left a file")
	}
	// A hash mismatch is not retried: the same bytes would fail again.
	if f.uploads != 1 {
		t.Errorf("%d uploads", f.uploads)
	}
}

func TestAgentThatDoesNotStart(t *testing.T) {
	f := newFakeHost(t)
	f.files[testAgent.Path()] = agentBytes
	f.noHello = true
	_, err := Connect(context.Background(), "web1", f, Options{Agent: testAgent})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"host web1: starting the agent", "exited before saying hello (exit code 1)", "Access is denied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Started once more in case the failure was transient, then reported.
	if f.starts != 2 {
		t.Errorf("%d starts, want 2", f.starts)
	}
}

// An agent that stops answering must not hang gsd: a call gives up when
// its context ends, and says so.
func TestCallGivesUpWithContext(t *testing.T) {
	f := newFakeHost(t)
	f.files[testAgent.Path()] = agentBytes
	f.mute = true
	h, err := Connect(context.Background(), "web1", f, Options{Agent: testAgent})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := h.Facts(ctx); done <- err }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "host web1: gathering facts: gave up waiting for the agent") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Facts did not give up when its context ended")
	}
}
