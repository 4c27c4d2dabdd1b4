package agent

import (
	"bytes"
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// activeSetup stages v1, makes it the running release of "api", and returns
// its path and content so tests can prove it was never touched.
func activeSetup(t *testing.T, s *session) (path string, content []byte) {
	t.Helper()
	content = bytes.Repeat([]byte("v1-binary "), 500)
	res := s.stage("v1", "api.exe", content, 1000)
	s.deploy("dep", nativeSpec("api", res.SHA256, "1"), protocol.EffectNone)
	return res.Path, content
}

func assertActiveIntact(t *testing.T, root, path string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("active binary changed or missing: %v", err)
	}
	a, _ := newTestAgent(t, root)
	f, err := a.Facts()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Artifacts) != 1 || f.Services[0].Current.Path != path || f.Services[0].BinarySHA256 != digest(content) {
		t.Fatalf("artifacts %v, current %+v", f.Artifacts, f.Services[0].Current)
	}
}

func TestStageRefusesBadStreams(t *testing.T) {
	v2 := bytes.Repeat([]byte("v2-binary!"), 1000)
	cases := []struct {
		name string
		send func(s *session)
		code string
		// ends: the stream cannot be followed, so the session ends after
		// the error; otherwise a later request must still be served.
		ends bool
	}{
		{name: "wrong hash", send: func(s *session) {
			s.sendStage("x", "api.exe", digest([]byte("something else")), v2, 999)
		}, code: protocol.CodeHashMismatch},
		{name: "corrupted bytes", send: func(s *session) {
			bad := bytes.Clone(v2)
			bad[5000] ^= 0xff
			s.sendStage("x", "api.exe", digest(v2), bad, 999)
		}, code: protocol.CodeHashMismatch},
		{name: "longer than announced", send: func(s *session) {
			s.sendStageEncoded("x", "api.exe", digest(v2), v2[:20], 10, 999, protocol.EncodingNone)
		}, code: protocol.CodeSizeMismatch},
		{name: "shorter than announced", send: func(s *session) {
			s.sendStageEncoded("x", "api.exe", digest(v2), v2[:20], int64(len(v2)), 999, protocol.EncodingNone)
		}, code: protocol.CodeStreamBroken},
		{name: "compressed stream longer than announced", send: func(s *session) {
			// A small stream that inflates far past its announced size
			// is cut off at the size, not written out.
			s.sendStageEncoded("x", "api.exe", digest(v2), zstdOf(t, make([]byte, 64<<20)), 10, 999, protocol.EncodingZstd)
		}, code: protocol.CodeSizeMismatch},
		{name: "compressed stream cut short", send: func(s *session) {
			z := zstdOf(t, v2)
			s.sendStageEncoded("x", "api.exe", digest(v2), z[:len(z)/2], int64(len(v2)), 999, protocol.EncodingZstd)
		}, code: protocol.CodeStreamBroken},
		{name: "garbage instead of zstd", send: func(s *session) {
			s.sendStageEncoded("x", "api.exe", digest(v2), bytes.Repeat([]byte("not zstd"), 100), int64(len(v2)), 999, protocol.EncodingZstd)
		}, code: protocol.CodeStreamBroken},
		{name: "unknown encoding", send: func(s *session) {
			s.sendStageEncoded("x", "api.exe", digest(v2), v2, int64(len(v2)), 999, "brotli")
		}, code: protocol.CodeBadRequest},
		{name: "a request line inside the frames", send: func(s *session) {
			s.send("x", protocol.OpStage, protocol.StageArgs{SHA256: digest(v2), Size: int64(len(v2)), Name: "api.exe"})
			s.sendFrames(v2[:100], 999, false)
			s.send("other", protocol.OpFacts, nil)
		}, code: protocol.CodeStreamBroken, ends: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := testfs.TempDir(t)
			a, _ := newTestAgent(t, root)
			s := startSession(t, a)
			path, content := activeSetup(t, s)
			c.send(s)
			ev, _ := s.wait("x")
			if ev.Kind != protocol.EventError || ev.Error.Code != c.code {
				t.Fatalf("got %+v %+v, want %s", ev, ev.Error, c.code)
			}
			if c.ends {
				s.in.Close()
				if err := <-s.done; !errors.Is(err, ErrSessionEnded) {
					t.Fatalf("serve: %v, want ErrSessionEnded", err)
				}
			} else {
				s.call("after", protocol.OpFacts, nil, nil)
				s.close()
			}
			if tmp := tempFiles(t, root); len(tmp) != 0 {
				t.Fatalf("temp files left: %v", tmp)
			}
			assertActiveIntact(t, root, path, content)
		})
	}
}

func TestStageTruncatedByEndOfInput(t *testing.T) {
	for _, encoding := range []string{protocol.EncodingNone, protocol.EncodingZstd} {
		root := testfs.TempDir(t)
		a, _ := newTestAgent(t, root)
		s := startSession(t, a)
		path, content := activeSetup(t, s)
		v2 := bytes.Repeat([]byte("v2"), 5000)
		stream := v2
		if encoding == protocol.EncodingZstd {
			stream = zstdOf(t, v2)
		}
		s.send("x", protocol.OpStage, protocol.StageArgs{SHA256: digest(v2), Size: int64(len(v2)), Name: "api.exe", Encoding: encoding})
		s.sendFrames(stream[:len(stream)/2], 100, false)
		s.in.Close()
		ev := s.next()
		if ev.Kind != protocol.EventError || ev.Error.Code != protocol.CodeStreamBroken {
			t.Fatalf("%q: got %+v", encoding, ev)
		}
		s.close()
		if tmp := tempFiles(t, root); len(tmp) != 0 {
			t.Fatalf("%q: temp files left: %v", encoding, tmp)
		}
		assertActiveIntact(t, root, path, content)
	}
}

func TestStageIsContentAddressedAndIdempotent(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	content := []byte("hello artifact")
	first := s.stage("a", "x.exe", content, 4)
	second := s.stage("b", "x.exe", content, 5)
	if first.AlreadyPresent || !second.AlreadyPresent || first.Path != second.Path {
		t.Fatalf("first %+v second %+v", first, second)
	}
	if !strings.Contains(filepath.ToSlash(first.Path), "artifacts/"+digest(content)+"/x.exe") {
		t.Fatalf("not content addressed: %s", first.Path)
	}
	empty := s.stage("c", "empty.exe", nil, 4)
	if empty.Size != 0 {
		t.Fatalf("empty: %+v", empty)
	}
	s.close()
}

// startHelper runs a real agent process (this test binary) on root.
func startHelper(t *testing.T, root string) (*session, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperRootEnv+"="+root)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &session{t: t, in: in, done: make(chan error, 1)}
	return s.attach(out), cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func TestAgentKilledMidStreamLeavesNothingAfterNextRun(t *testing.T) {
	root := testfs.TempDir(t)
	s, cmd := startHelper(t, root)
	path, content := activeSetup(t, s)
	// Same file name as the active release: only content addressing keeps
	// them apart.
	v2 := bytes.Repeat([]byte("v2-binary!"), 100000)
	s.send("x", protocol.OpStage, protocol.StageArgs{SHA256: digest(v2), Size: int64(len(v2)), Name: "api.exe"})
	s.sendFrames(v2[:len(v2)/2], 10000, false)
	waitUntil(t, "a partial upload on disk", func() bool { return len(tempFiles(t, root)) > 0 })
	kill(t, cmd)

	// The next run sweeps the abandoned temp file when it takes the lock,
	// reporting that it took over the dead agent's lock.
	a, _ := newTestAgent(t, root)
	next := startSession(t, a)
	progress := next.call("l", protocol.OpLock, protocol.LockArgs{Operator: "next"}, nil)
	var msgs []string
	for _, p := range progress {
		msgs = append(msgs, p.Message)
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "took over the lock") || !strings.Contains(joined, "temp file") {
		t.Fatalf("progress did not report the recovery: %q", joined)
	}
	next.close()
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
	assertActiveIntact(t, root, path, content)
}

func TestStageRefusedByLockStillConsumesFrames(t *testing.T) {
	root := testfs.TempDir(t)
	first, _ := newTestAgent(t, root)
	s1 := startSession(t, first)
	s1.call("l", protocol.OpLock, protocol.LockArgs{Operator: "alice"}, nil)
	second, _ := newTestAgent(t, root)
	s2 := startSession(t, second)
	content := bytes.Repeat([]byte("z"), 5000)
	s2.sendStage("x", "z.exe", digest(content), content, 1000)
	ev, _ := s2.wait("x")
	if ev.Kind != protocol.EventError || ev.Error.Code != protocol.CodeLocked {
		t.Fatalf("got %+v", ev)
	}
	// Its frames were skipped, not read as stray requests.
	var f protocol.Facts
	s2.call("f", protocol.OpFacts, nil, &f)
	if len(f.Artifacts) != 0 {
		t.Fatalf("staged despite the lock: %v", f.Artifacts)
	}
	s1.close()
	s2.close()
}
