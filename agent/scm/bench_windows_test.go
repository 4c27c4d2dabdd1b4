//go:build windows

package scm_test

import (
	"fmt"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// BenchmarkFactsRealSCM50 measures one facts round trip for 50 services
// installed in the real service manager (Wine's under make test-wine).
func BenchmarkFactsRealSCM50(b *testing.B) {
	root := testfs.TempDir(b)
	c := newClient(b, root)
	bin := readFixture(b, "nativesvc.exe")
	art, err := c.StageBytes("nativesvc.exe", bin)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("%s-%02d", serviceName("bench"), i)
		spec := protocol.ServiceSpec{Name: name, Mode: protocol.ModeNative, Artifact: art.SHA256, Start: protocol.StartManual,
			Recovery: &protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "restart", DelayMS: 1000}}, ResetAfterMS: 60000}}
		deploy(b, c, spec, protocol.EffectNone)
		b.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })
	}
	b.ResetTimer()
	var f protocol.Facts
	for i := 0; i < b.N; i++ {
		if err := c.Call(protocol.OpFacts, nil, &f); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(f.Services) != 50 {
		b.Fatalf("facts covered %d services, want 50", len(f.Services))
	}
	b.ReportMetric(50, "services/roundtrip")
}
