package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

func TestVersionAndUsageExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), fmt.Sprintf("protocol %d", protocol.Version)) {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, nil, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code := run([]string{"serve", "-no-such-flag"}, nil, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code := run([]string{"service-host", "-root", tempDir(t), "-service", "missing"}, nil, &out, &errOut); code != 1 {
		t.Fatalf("service-host without wrapper.json: exit %d", code)
	}
}

func TestServeSpeaksProtocolOnStdio(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	codes := make(chan int, 1)
	root := tempDir(t)
	go func() {
		codes <- run([]string{"serve", "-root", root}, inR, outW, io.Discard)
		outW.Close()
	}()
	c, err := client.New(outR, inW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StageBytes("a.exe", []byte("artifact")); err != nil {
		t.Fatal(err)
	}
	var f protocol.Facts
	if err := c.Call(protocol.OpFacts, nil, &f); err != nil || len(f.Artifacts) != 1 || f.Host.Root != root {
		t.Fatalf("facts %+v %v", f, err)
	}
	inW.Close()
	if code := <-codes; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// tempDir is removed with atomicfile.RemoveTree because t.TempDir's cleanup
// fails under Wine.
func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "gsd-agent-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { atomicfile.RemoveTree(dir) })
	return dir
}
