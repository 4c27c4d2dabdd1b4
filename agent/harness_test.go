package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/winsec/winsectest"
)

// helperRootEnv makes the test binary act as a gsd-agent process serving
// stdin/stdout with the file-backed fake, so tests can kill a real process.
const helperRootEnv = "GSD_AGENT_TEST_HELPER_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(helperRootEnv); root != "" {
		fake := newFakeServices(root)
		fake.hang = true
		fake.sec = winsectest.New()
		fake.sec.AnyUser = true
		a := New(Options{Root: root, Services: fake, ServiceHost: "gsd-agent.exe", Security: fake.sec})
		if err := a.Serve(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// session is a client talking to an agent over pipes.
type session struct {
	t      *testing.T
	in     io.WriteCloser
	events *bufio.Scanner
	hello  protocol.Event
	done   chan error
}

// newTestAgent is an agent over a fake service manager and a fake of the
// host's security, which the service manager consults.
func newTestAgent(t *testing.T, root string) (*Agent, *fakeServices) {
	t.Helper()
	fake := newFakeServices(root)
	fake.sec = winsectest.New()
	fake.sec.AnyUser = true
	return New(Options{Root: root, Services: fake, ServiceHost: `C:\gsd\gsd-agent.exe`, Security: fake.sec}), fake
}

func startSession(t *testing.T, a *Agent) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, in: inW, done: make(chan error, 1)}
	go func() {
		err := a.Serve(context.Background(), inR, outW)
		outW.Close()
		s.done <- err
	}()
	return s.attach(outR)
}

func (s *session) attach(out io.Reader) *session {
	s.events = bufio.NewScanner(out)
	s.events.Buffer(make([]byte, 1<<20), 64<<20)
	s.hello = s.next()
	if s.hello.Kind != protocol.EventHello {
		s.t.Fatalf("first event is %+v, want hello", s.hello)
	}
	return s
}

func (s *session) next() protocol.Event {
	s.t.Helper()
	if !s.events.Scan() {
		s.t.Fatalf("agent output ended: %v", s.events.Err())
	}
	var ev protocol.Event
	if err := json.Unmarshal(s.events.Bytes(), &ev); err != nil {
		s.t.Fatalf("agent wrote a bad line %q: %v", s.events.Text(), err)
	}
	return ev
}

func (s *session) sendLine(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

func (s *session) send(id, op string, args any) {
	s.t.Helper()
	req := protocol.Request{ID: id, Op: op}
	if args != nil {
		req.Args = protocol.MustArgs(args)
	}
	if err := protocol.EncodeRequest(s.in, req); err != nil {
		s.t.Fatal(err)
	}
}

// wait returns the final event of request id and the progress before it.
func (s *session) wait(id string) (final protocol.Event, progress []protocol.Event) {
	s.t.Helper()
	for {
		ev := s.next()
		if ev.ID != id {
			s.t.Fatalf("event for %q while waiting for %q: %+v", ev.ID, id, ev)
		}
		if ev.Kind == protocol.EventProgress {
			progress = append(progress, ev)
			continue
		}
		return ev, progress
	}
}

// call sends a request and requires it to succeed.
func (s *session) call(id, op string, args any, result any) []protocol.Event {
	s.t.Helper()
	s.send(id, op, args)
	ev, progress := s.wait(id)
	if ev.Kind != protocol.EventResult {
		s.t.Fatalf("%s %s: got %+v (error %+v), want result", op, id, ev, ev.Error)
	}
	if result != nil {
		if err := json.Unmarshal(ev.Result, result); err != nil {
			s.t.Fatal(err)
		}
	}
	return progress
}

// callErr sends a request and requires it to fail with code.
func (s *session) callErr(id, op string, args any, code string) protocol.Event {
	s.t.Helper()
	s.send(id, op, args)
	ev, _ := s.wait(id)
	if ev.Kind != protocol.EventError || ev.Error == nil || ev.Error.Code != code {
		s.t.Fatalf("%s %s: got %+v (error %+v), want error %s", op, id, ev, ev.Error, code)
	}
	return ev
}

// stageRelease stores spec, secrets included, as a release and returns
// its id: the first half of how gsd applies a change.
func (s *session) stageRelease(id string, spec protocol.ServiceSpec) string {
	s.t.Helper()
	var res protocol.StageReleaseResult
	s.call(id, protocol.OpStageRelease, stageArgs(spec), &res)
	return res.ID
}

// stageArgs is spec as gsd sends it: without secrets, which travel apart.
func stageArgs(spec protocol.ServiceSpec) protocol.StageReleaseArgs {
	for i, f := range spec.Files {
		if f.SHA256 == "" {
			spec.Files[i].SHA256 = digest(f.Content)
		}
	}
	return protocol.StageReleaseArgs{Kind: protocol.KindService, Name: spec.Name, Spec: protocol.MustArgs(spec.WithoutSecrets()), Secrets: spec.Secrets()}
}

// activate switches service name to a staged release.
func (s *session) activate(id, name, release, effect string) protocol.ActivateResult {
	s.t.Helper()
	var res protocol.ActivateResult
	s.call(id, protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: name, Release: release, Effect: effect}, &res)
	return res
}

// deploy stages spec and activates it with effect, as gsd does, and
// returns the release id.
func (s *session) deploy(id string, spec protocol.ServiceSpec, effect string) (string, protocol.ActivateResult) {
	s.t.Helper()
	rel := s.stageRelease(id+"/stage", spec)
	return rel, s.activate(id, spec.Name, rel, effect)
}

func (s *session) close() {
	s.in.Close()
	for s.events.Scan() {
	}
	if err := <-s.done; err != nil {
		s.t.Fatalf("serve: %v", err)
	}
}

// stage streams content as an artifact, zstd-compressed as gsd sends it,
// in frames of frame bytes.
func (s *session) stage(id, name string, content []byte, frame int) protocol.StageResult {
	s.t.Helper()
	s.sendStageEncoded(id, name, digest(content), zstdOf(s.t, content), int64(len(content)), frame, protocol.EncodingZstd)
	ev, _ := s.wait(id)
	if ev.Kind != protocol.EventResult {
		s.t.Fatalf("stage: %+v %+v", ev, ev.Error)
	}
	var res protocol.StageResult
	json.Unmarshal(ev.Result, &res)
	return res
}

// sendStage streams content uncompressed in frames of frame bytes.
func (s *session) sendStage(id, name, sha string, content []byte, frame int) {
	s.sendStageEncoded(id, name, sha, content, int64(len(content)), frame, protocol.EncodingNone)
}

// sendStageEncoded announces size bytes and sends stream, already in the
// given encoding, as frames followed by the terminator.
func (s *session) sendStageEncoded(id, name, sha string, stream []byte, size int64, frame int, encoding string) {
	s.send(id, protocol.OpStage, protocol.StageArgs{SHA256: sha, Size: size, Name: name, Encoding: encoding})
	s.sendFrames(stream, frame, true)
}

// sendFrames writes stream as frames, and the terminator if end.
func (s *session) sendFrames(stream []byte, frame int, end bool) {
	if _, err := s.in.Write(framed(stream, frame, end)); err != nil {
		s.t.Fatal(err)
	}
}

// framed is stream as frames of frame bytes, with the terminator if end.
func framed(stream []byte, frame int, end bool) []byte {
	var buf bytes.Buffer
	fw := protocol.NewFrameWriter(&buf, frame)
	fw.Write(stream)
	fw.Close()
	if !end {
		return buf.Bytes()[:buf.Len()-4]
	}
	return buf.Bytes()
}

// zstdOf compresses b as one zstd stream.
func zstdOf(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// listFiles returns every file under root, relative, for "nothing written"
// and "no stray temp files" checks.
func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func tempFiles(t *testing.T, root string) []string {
	var out []string
	for _, f := range listFiles(t, root) {
		if strings.Contains(f, ".gsd-tmp-") {
			out = append(out, f)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
