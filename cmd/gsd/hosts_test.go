package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// countingConn answers facts for a host that runs every service it is
// told about, counting the round trips.
type countingConn struct {
	calls    *atomic.Int64
	services int
}

func (c countingConn) Facts(context.Context) (protocol.Facts, error) {
	c.calls.Add(1)
	f := protocol.Facts{}
	for i := 0; i < c.services; i++ {
		f.Services = append(f.Services, protocol.ServiceFacts{Name: fmt.Sprintf("s%d", i), Installed: true})
	}
	return f, nil
}
func (countingConn) Installed() bool       { return false }
func (countingConn) Hello() protocol.Hello { return protocol.Hello{AgentVersion: "test"} }
func (countingConn) Close() error          { return nil }

// A plan for 200 services on one host, and for 3 hosts, reads each host's
// facts in exactly one agent round trip (and plans each native service's
// event source with it).
func TestOneFactsRoundTripPerHost(t *testing.T) {
	var b strings.Builder
	for _, h := range []string{"h1", "h2", "h3"} {
		fmt.Fprintf(&b, "host %q {\n  address = \"%s.example.internal\"\n  winrm {\n    user = \"u\"\n    password = \"p\"\n  }\n}\n", h, h)
	}
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "service \"s%d\" {\n  hosts = [\"h1\"]\n  binary = \"app.exe\"\n}\n", i)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.exe"), []byte("MZ"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(b.String()), 0o644)
	cfg, diags := config.Load(config.Options{Paths: []string{dir}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var calls atomic.Int64
	results := readHosts(context.Background(), cfg.Hosts, func(context.Context, *config.Host) (factsConn, error) {
		return countingConn{calls: &calls, services: 200}, nil
	}, 10)
	if calls.Load() != 3 || len(results) != 3 {
		t.Fatalf("facts round trips = %d for %d hosts, want one per host", calls.Load(), len(results))
	}
	art, _ := build.Prebuilt(filepath.Join(dir, "app.exe"))
	p, err := plan.Make(cfg, map[string]*build.Artifact{"file:" + filepath.Join(dir, "app.exe"): art}, hostFacts(results))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 3 || len(p.Hosts[0].Steps) != 400 {
		t.Errorf("plan: %d hosts, %d steps on h1", len(p.Hosts), len(p.Hosts[0].Steps))
	}
}
