package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

func TestClientAgainstAgent(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	a := agent.New(agent.Options{Root: testfs.TempDir(t), Services: scm.New()})
	go func() { a.Serve(context.Background(), inR, outW); outW.Close() }()
	c, err := client.New(outR, inW)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hello().ProtocolVersion != protocol.Version {
		t.Fatalf("hello %+v", c.Hello())
	}
	c.FrameSize = 7
	res, err := c.StageBytes("x.exe", []byte("some artifact bytes"))
	if err != nil || res.Size != 19 {
		t.Fatalf("stage: %+v %v", res, err)
	}
	big := bytes.Repeat([]byte("a compressible artifact "), 50000)
	for _, enc := range []string{protocol.EncodingZstd, protocol.EncodingNone} {
		c.Encoding, c.FrameSize = enc, 0
		res, err := c.StageBytes("big.exe", big)
		if err != nil || res.Size != int64(len(big)) || res.AlreadyPresent != (enc == protocol.EncodingNone) {
			t.Fatalf("stage %q: %+v %v", enc, res, err)
		}
	}
	// A source that fails or ends early makes the stage fail with the
	// source's error, and leaves the session usable.
	sha := sha256Hex(big)
	broken := errors.New("disk read error")
	if _, err := c.Stage(sha, int64(len(big)), "y.exe", io.MultiReader(bytes.NewReader(big[:1000]), iotest.ErrReader(broken))); !errors.Is(err, broken) {
		t.Fatalf("failing source: got %v", err)
	}
	if _, err := c.Stage(sha, int64(len(big)), "y.exe", bytes.NewReader(big[:1000])); err == nil || !strings.Contains(err.Error(), "source ended after 1000") {
		t.Fatalf("short source: got %v", err)
	}
	var f protocol.Facts
	if err := c.Call(protocol.OpFacts, nil, &f); err != nil || len(f.Artifacts) != 2 {
		t.Fatalf("facts: %+v %v", f, err)
	}
	spec := protocol.ServiceSpec{Name: "api", Artifact: res.SHA256, Files: []protocol.FileSpec{{Name: "../x", SHA256: sha256Hex(nil)}}}
	err = c.Call(protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: protocol.KindService, Name: "api", Spec: protocol.MustArgs(spec)}, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code() != protocol.CodeInvalidName {
		t.Fatalf("got %v", err)
	}
	// The session goes on after an error: a release stages and its id
	// comes back.
	spec.Files = nil
	var staged protocol.StageReleaseResult
	if err := c.Call(protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: protocol.KindService, Name: "api", Spec: protocol.MustArgs(spec)}, &staged); err != nil || staged.ID == "" {
		t.Fatalf("stage_release: %+v %v", staged, err)
	}
	inW.Close()
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Heartbeats go between requests and never into a stage's frames, even
// when sent far more often than anything else.
func TestHeartbeatsNeverBreakTheStream(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	a := agent.New(agent.Options{Root: testfs.TempDir(t), Services: scm.New()})
	served := make(chan error, 1)
	go func() { served <- a.Serve(context.Background(), inR, outW); outW.Close() }()
	c, err := client.New(outR, inW)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c.Heartbeat(ctx, time.Millisecond)
	c.FrameSize = 512
	c.Encoding = protocol.EncodingNone
	for i := range 20 {
		content := bytes.Repeat([]byte{byte('a' + i)}, 200_000)
		if res, err := c.StageBytes("x.exe", content); err != nil || res.Size != int64(len(content)) {
			t.Fatalf("stage %d with heartbeats: %+v %v", i, res, err)
		}
		if err := c.Call(protocol.OpFacts, nil, nil); err != nil {
			t.Fatalf("facts %d with heartbeats: %v", i, err)
		}
	}
	stop()
	inW.Close()
	if err := <-served; err != nil {
		t.Fatalf("the agent ended with %v", err)
	}
}
