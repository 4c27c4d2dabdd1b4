package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/providers/transport"
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
func (countingConn) Describe() transport.Description {
	return transport.Description{}
}

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

// What gsd hosts check prints per host, pinned: how each host was
// reached, its agent, and what to change.
func TestHostCheckReport(t *testing.T) {
	winrmHost := &config.Host{Name: "web1", WinRM: &config.WinRM{}}
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	writeHostCheck(&b, "web1", winrmHost, hostResult{
		agent: "0.9.0", installed: true,
		facts: &protocol.Facts{Host: protocol.HostFacts{Machine: "WEB1"}, Services: []protocol.ServiceFacts{{Name: "api"}}},
		way: transport.Description{
			Listener:   "http://10.0.0.11:5985/wsman",
			Auth:       "NTLM as deploy",
			Encryption: "every message sealed with the NTLM session key (WinRM message encryption over HTTP)",
			TLS:        "not used (plain HTTP)",
			Notes:      []string{"10.0.0.11:5985 ends a wait for output after 1m0s (its MaxTimeoutms) though gsd asks for 2m30s"},
		},
	})
	writeHostCheck(&b, "web2", winrmHost, hostResult{
		agent: "0.9.0",
		facts: &protocol.Facts{Host: protocol.HostFacts{Machine: "WEB2"}, Lock: &protocol.LockHolder{User: "ci", Machine: "runner7", Since: since}},
		way: transport.Description{
			Listener:   "https://web2.corp.example:5986/wsman",
			Auth:       "NTLM as deploy",
			Encryption: "TLS 1.3",
			TLS:        `certificate "CN=web2.corp.example" from "CN=Corp CA", verified against ca_cert; NTLM bound to it by a channel binding`,
		},
	})
	writeHostCheck(&b, "web3", winrmHost, hostResult{err: fmt.Errorf("host web3: starting the agent: creating a shell: 10.0.0.13:5985 does not offer NTLM (it offers Basic)")})
	golden(t, "hosts-check.txt", b.String())
}
