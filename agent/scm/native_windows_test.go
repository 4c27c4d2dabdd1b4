//go:build windows

package scm_test

import (
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc/mgr"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

func TestNativeServiceOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c := newClient(t, root)
	name := serviceName("native")
	marker := filepath.Join(root, "native-marker.txt")
	bin := readFixture(t, "nativesvc.exe")
	r1, err := c.StageBytes("nativesvc.exe", bin)
	must(t, err)
	// Bytes appended to a PE file do not change what it runs, so this is a
	// second release of the same program with a different hash.
	r2, err := c.StageBytes("nativesvc.exe", append(slices.Clone(bin), []byte("release-2")...))
	must(t, err)

	spec := protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeNative, Artifact: r1.SHA256, Version: "1.0",
		DisplayName: "gsd native fixture", Description: "x/sys/windows/svc test service",
		Args:  []string{"-name", name, "-marker", marker},
		Start: protocol.StartDelayed, Account: protocol.Account{Name: "LocalSystem"},
		Env:      map[string]string{"GSD_FIXTURE_ENV": "from-registry"},
		Recovery: &protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "restart", DelayMS: 5000}, {Type: "restart", DelayMS: 30000}, {Type: "none"}}, ResetAfterMS: 86400000, OnNonCrash: true},
	}
	id1, ens := deploy(t, c, spec, protocol.EffectNone)
	t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })
	if !ens.Changed || ens.From != "" || ens.Running {
		t.Fatalf("first activation: %+v", ens)
	}
	t.Logf("settings this host accepted but cannot honour or report: %v", ens.Recorded)

	f := facts(t, c, name)
	if !f.Installed || f.Config == nil {
		t.Fatalf("not installed: %+v", f)
	}
	cfg := f.Config
	if !strings.EqualFold(cfg.BinaryPath, r1.Path) || strings.Join(cfg.Args, " ") != strings.Join(spec.Args, " ") {
		t.Fatalf("binary %q args %q, want %q %q", cfg.BinaryPath, cfg.Args, r1.Path, spec.Args)
	}
	if cfg.DisplayName != spec.DisplayName || cfg.Description != spec.Description || cfg.Account != "LocalSystem" {
		t.Fatalf("config: %+v", cfg)
	}
	if cfg.StartType != protocol.StartDelayed || !cfg.DelayedStart {
		t.Fatalf("start type %q delayed %v sources %v", cfg.StartType, cfg.DelayedStart, f.Sources)
	}
	if f.Recovery == nil || len(f.Recovery.Actions) != 3 || f.Recovery.ResetAfterMS != 86400000 || !f.Recovery.OnNonCrash {
		t.Fatalf("recovery: %+v (sources %v, unreadable %v)", f.Recovery, f.Sources, f.Unreadable)
	}
	if want := protocol.HashEnv(spec.Env); f.EnvSHA256["GSD_FIXTURE_ENV"] != want["GSD_FIXTURE_ENV"] {
		t.Fatalf("env: names and hashes %v, want %v", f.EnvSHA256, want)
	}
	if f.Status.State != agent.StateStopped || f.BinarySHA256 != r1.SHA256 {
		t.Fatalf("status %+v sha %s", f.Status, f.BinarySHA256)
	}
	if scm.IsWine() {
		for _, setting := range []string{"recovery", "delayed_start", "env"} {
			if f.Unreadable[setting] == "" {
				t.Errorf("under Wine, %s should be reported as unreadable; unreadable = %v", setting, f.Unreadable)
			}
		}
	}

	activate(t, c, name, id1, protocol.EffectStart, 30000)
	f = facts(t, c, name)
	if f.Status.State != agent.StateRunning || f.Status.PID == 0 {
		t.Fatalf("after start: %+v", f.Status)
	}
	eventually(t, "the service to record its start", func() bool { return countPrefix(markerLines(marker), "start") == 1 })
	start := markerLines(marker)[0]
	t.Logf("service saw: %s", start)
	if scm.IsWine() && !strings.Contains(start, "is_windows_service=false") {
		t.Logf("note: svc.IsWindowsService no longer answers false under this Wine: %s", start)
	}
	if !strings.Contains(start, "args=") {
		t.Fatalf("marker: %q", start)
	}
	if scm.IsWine() == strings.Contains(start, "env=from-registry") {
		t.Errorf("Environment registry value applied=%v under Wine=%v; the gap report is wrong", strings.Contains(start, "env=from-registry"), scm.IsWine())
	}

	activate(t, c, name, id1, protocol.EffectReload, 30000)
	eventually(t, "PARAMCHANGE to reach the service", func() bool { return countPrefix(markerLines(marker), "paramchange") == 1 })

	spec2 := spec
	spec2.Artifact, spec2.Version = r2.SHA256, "2.0"
	_, sw := deploy(t, c, spec2, protocol.EffectRestart)
	if !sw.Changed || !sw.Running || sw.From != id1 {
		t.Fatalf("switch: %+v", sw)
	}
	f = facts(t, c, name)
	if f.BinarySHA256 != r2.SHA256 || f.Current.Version != "2.0" || f.Previous.Artifact != r1.SHA256 || f.Status.State != agent.StateRunning {
		t.Fatalf("after switch: sha %s current %+v previous %+v status %+v", f.BinarySHA256, f.Current, f.Previous, f.Status)
	}
	activate(t, c, name, id1, protocol.EffectRestart, 30000) // the rollback
	f = facts(t, c, name)
	if f.BinarySHA256 != r1.SHA256 || f.Status.State != agent.StateRunning {
		t.Fatalf("after rollback: sha %s status %+v", f.BinarySHA256, f.Status)
	}
	eventually(t, "three starts and two stops", func() bool {
		l := markerLines(marker)
		return countPrefix(l, "start") == 3 && countPrefix(l, "stop") == 2
	})

	activate(t, c, name, id1, protocol.EffectStop, 30000)
	if f = facts(t, c, name); f.Status.State != agent.StateStopped {
		t.Fatalf("after stop: %+v", f.Status)
	}
	must(t, c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name, Purge: true}, nil))
	obs, err := scm.New().Query(name)
	must(t, err)
	if obs.Installed {
		t.Fatal("service still installed after delete")
	}
}

func TestAccountsAndDependenciesOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c := newClient(t, root)
	r, err := c.StageBytes("nativesvc.exe", readFixture(t, "nativesvc.exe"))
	must(t, err)
	const secret = "Pa55-word-that-must-not-leak"
	name := serviceName("acct")
	spec := protocol.ServiceSpec{Name: name, Mode: protocol.ModeNative, Artifact: r.SHA256, Start: protocol.StartManual, DependsOn: []string{"RpcSs"}}
	t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })
	for _, acct := range []struct{ give, want string }{
		{"LocalService", `NT AUTHORITY\LocalService`},
		{"NetworkService", `NT AUTHORITY\NetworkService`},
		{`NT SERVICE\` + name, `NT SERVICE\` + name},
		{`.\gsd-deploy`, `.\gsd-deploy`},
		{`EXAMPLE\svc-api`, `EXAMPLE\svc-api`},
		{"LocalSystem", "LocalSystem"},
	} {
		spec.Account = protocol.Account{Name: acct.give}
		if strings.HasPrefix(acct.give, `.\`) || strings.HasPrefix(acct.give, `EXAMPLE\`) {
			spec.Account.Password = secret
		}
		deploy(t, c, spec, protocol.EffectNone)
		f := facts(t, c, name)
		if f.Config.Account != acct.want {
			t.Errorf("account %q: SCM reports %q, want %q", acct.give, f.Config.Account, acct.want)
		}
		if !slices.Equal(f.Config.Dependencies, []string{"RpcSs"}) || f.Config.StartType != protocol.StartManual {
			t.Errorf("deps %v start %q", f.Config.Dependencies, f.Config.StartType)
		}
		if f.LastApplied.Account.Password != "" {
			t.Fatal("password reported in facts")
		}
		// Facts carry only a salted hash of a password that was set, so
		// that a plan can compare; none for accounts without one.
		if hasPW := spec.Account.Password != ""; (f.Password != nil) != hasPW || (hasPW && !f.Password.Matches(secret)) {
			t.Errorf("account %q: password facts %+v", acct.give, f.Password)
		}
	}
	spec.DependsOn = nil
	deploy(t, c, spec, protocol.EffectNone)
	if f := facts(t, c, name); len(f.Config.Dependencies) != 0 {
		t.Errorf("dependencies not cleared: %v", f.Config.Dependencies)
	}
	for _, file := range []string{"state.json"} {
		b, _ := readFile(filepath.Join(root, file))
		if strings.Contains(b, secret) {
			t.Fatalf("password reached %s", file)
		}
	}
}

// A service deleted while another program holds it open stays, marked
// for deletion (Wine's service manager does this too): the delete says
// so, a new release of it waits for it to go and then names the holder's
// kind, and once the holder lets go the same release goes through.
func TestMarkedForDeleteOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c := newClientWith(t, agent.Options{Root: root, MarkedForDeleteWait: 300 * time.Millisecond})
	var progress []string
	c.Progress = func(ev protocol.Event) { progress = append(progress, ev.Message) }
	r, err := c.StageBytes("nativesvc.exe", readFixture(t, "nativesvc.exe"))
	must(t, err)
	name := serviceName("marked")
	spec := protocol.ServiceSpec{Name: name, Mode: protocol.ModeNative, Artifact: r.SHA256, Version: "1", Start: protocol.StartManual}
	deploy(t, c, spec, protocol.EffectNone)
	t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })

	m, err := mgr.Connect()
	must(t, err)
	defer m.Disconnect()
	holder, err := m.OpenService(name)
	must(t, err)
	must(t, c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil))
	if !strings.Contains(strings.Join(progress, "\n"), "marked for deletion") {
		t.Errorf("the delete did not say the service is only marked: %q", progress)
	}
	spec.Version = "2"
	var staged protocol.StageReleaseResult
	must(t, c.Call(protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: protocol.KindService, Name: name, Spec: protocol.MustArgs(spec)}, &staged))
	err = c.Call(protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: name, Release: staged.ID, Effect: protocol.EffectNone}, nil)
	if err == nil || !strings.Contains(err.Error(), "1072") || !strings.Contains(err.Error(), "services.msc") {
		t.Fatalf("activation while marked: %v", err)
	}
	holder.Close()
	activate(t, c, name, staged.ID, protocol.EffectNone, 0)
	if f := facts(t, c, name); !f.Installed || f.Current == nil || f.Current.Version != "2" {
		t.Fatalf("after the holder let go: %+v", f)
	}
}
