//go:build windows

package scm_test

import (
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

// Restarting a service that another one depends on stops the dependent
// first and starts it again after, on the real service manager. Wine does
// not refuse the stop as Windows does, so what is checked is that the
// dependent went down and came back.
func TestRestartTakesDependentsAlongOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c := newClient(t, root)
	r, err := c.StageBytes("nativesvc.exe", readFixture(t, "nativesvc.exe"))
	must(t, err)
	base, dep := serviceName("base"), serviceName("dep")
	depMarker := filepath.Join(root, "dep-marker.txt")
	releases := map[string]string{}
	for _, spec := range []protocol.ServiceSpec{
		{Name: base, Mode: protocol.ModeNative, Artifact: r.SHA256, Start: protocol.StartManual, Args: []string{"-name", base}},
		{Name: dep, Mode: protocol.ModeNative, Artifact: r.SHA256, Start: protocol.StartManual, Args: []string{"-name", dep, "-marker", depMarker}, DependsOn: []string{base}},
	} {
		releases[spec.Name], _ = deploy(t, c, spec, protocol.EffectNone)
		t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: spec.Name}, nil) })
	}
	for _, n := range []string{base, dep} {
		activate(t, c, n, releases[n], protocol.EffectStart, 30000)
	}
	if m, err := mgr.Connect(); err == nil && scm.IsWine() {
		// Wine 8's EnumDependentServices is a stub that lists nothing,
		// which is why the agent reads the registry there instead.
		if s, err := m.OpenService(base); err == nil {
			if raw, err := s.ListDependentServices(svc.AnyActivity); err == nil && len(raw) > 0 {
				t.Logf("note: EnumDependentServices works under this Wine (%v); the registry fallback may go", raw)
			}
			s.Close()
		}
		m.Disconnect()
	}
	got, err := scm.New().ActiveDependents(base)
	must(t, err)
	if !slices.Equal(got, []string{dep}) {
		t.Fatalf("ActiveDependents(%s) = %v, want [%s]", base, got, dep)
	}

	activate(t, c, base, releases[base], protocol.EffectStop, 30000)
	if f := facts(t, c, dep); f.Status.State != agent.StateStopped {
		t.Fatalf("dependent after the stop: %+v", f.Status)
	}
	if got, _ := scm.New().ActiveDependents(base); len(got) != 0 {
		t.Errorf("stopped dependents reported as active: %v", got)
	}
	activate(t, c, base, releases[base], protocol.EffectStart, 30000)
	if f := facts(t, c, dep); f.Status.State != agent.StateRunning {
		t.Fatalf("dependent after the start: %+v", f.Status)
	}
	eventually(t, "the dependent to record two starts and a stop", func() bool {
		l := markerLines(depMarker)
		return countPrefix(l, "start") == 2 && countPrefix(l, "stop") == 1
	})
}
