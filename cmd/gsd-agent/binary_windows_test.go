//go:build windows

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gsd-deploy/gsd/agent/client"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// TestBuiltBinaryServesOverStdio drives gsd-agent.exe as a transport would:
// a separate process, requests on its stdin, events on its stdout.
func TestBuiltBinaryServesOverStdio(t *testing.T) {
	dir := os.Getenv("GSD_WINE_BIN_WIN")
	if dir == "" {
		if os.Getenv("GSD_REQUIRE_WINE") == "1" {
			t.Fatal("GSD_WINE_BIN_WIN is not set; run through `make test-wine`")
		}
		t.Skip("gsd-agent.exe not built; run `make test-wine`")
	}
	root := tempDir(t)
	cmd := exec.Command(filepath.Join(dir, "gsd-agent.exe"), "serve", "-root", root)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(out, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hello().OS != "windows" {
		t.Fatalf("hello %+v", c.Hello())
	}
	c.FrameSize = 1000 // several frames, zstd-compressed, through a real Windows pipe
	res, err := c.StageBytes("x.exe", make([]byte, 10_000))
	if err != nil || res.Size != 10_000 {
		t.Fatalf("stage %+v %v", res, err)
	}
	var f protocol.Facts
	if err := c.Call(protocol.OpFacts, nil, &f); err != nil || len(f.Artifacts) != 1 {
		t.Fatalf("facts %+v %v", f, err)
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exited: %v", err)
	}
}
