package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// The root is locked down before the agent trusts anything in it. On
// Linux the counterpart of the Windows DACL is mode 0700.
func TestLockRestrictsRootAccess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the Windows DACL is checked in package state")
	}
	root := testfs.TempDir(t)
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	s.call("l", protocol.OpLock, protocol.LockArgs{Operator: "op"}, nil)
	s.close()
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("root mode %v after lock, want 0700", fi.Mode().Perm())
	}
}

// A binary planted in an artifact's directory never becomes a service.
func TestEnsureServiceRefusesUnverifiedArtifact(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	sha := digest([]byte("the real api"))
	dir := filepath.Join(root, "artifacts", sha)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.exe"), []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSession(t, a)
	s.callErr("e", protocol.OpEnsureService, nativeSpec("api", sha, "1"), protocol.CodeNotFound)
	if fake.load()["api"] != nil {
		t.Fatal("a service was installed with the planted binary")
	}
	res := s.stage("st", "api.exe", []byte("the real api"), 5)
	if res.AlreadyPresent {
		t.Fatal("the planted file was taken as the staged artifact")
	}
	s.call("e2", protocol.OpEnsureService, nativeSpec("api", sha, "1"), nil)
	if got := fake.load()["api"].Config.BinaryPath; got != res.Path {
		t.Fatalf("binary path %s, want %s", got, res.Path)
	}
	if b, _ := os.ReadFile(res.Path); string(b) != "the real api" {
		t.Fatalf("binary content %q", b)
	}
	s.close()
}

// An agent killed in the middle of switching a running service's release
// (after stopping it, or inside the start after state.json was saved) must
// leave a service that the replayed apply starts again.
func TestKilledSwitchReleaseRestartsServiceOnReplay(t *testing.T) {
	for _, svcName := range []string{"hang", "hangstop"} {
		t.Run(svcName, func(t *testing.T) {
			root := testfs.TempDir(t)
			s, cmd := startHelper(t, root)
			v1 := s.stage("s1", "svc.exe", []byte("v1"), 10).SHA256
			v2 := s.stage("s2", "svc.exe", []byte("v2"), 10).SHA256
			s.call("e", protocol.OpEnsureService, nativeSpec(svcName, v1, "1"), nil)
			fake := newFakeServices(root)
			fake.update(svcName, func(fs *fakeService) error { fs.State = StateRunning; return nil })
			s.send("ap", protocol.OpApply, protocol.ApplyArgs{
				Steps:       []protocol.Request{{Op: protocol.OpSwitchRelease, Args: protocol.MustArgs(protocol.SwitchArgs{Service: svcName, Artifact: v2, Version: "2"})}},
				OnInterrupt: protocol.OnInterruptComplete,
			})
			waitUntil(t, "the switch to stop the service", func() bool {
				if fake.load()[svcName].State != StateStopped {
					return false
				}
				if svcName == "hangstop" {
					return true // killed inside Stop
				}
				// killed inside Start, after the new release was saved
				st, err := state.Load(state.Layout{Root: root})
				return err == nil && st.Services[svcName] != nil && st.Services[svcName].Current().Artifact == v2
			})
			kill(t, cmd)

			a, _ := newTestAgent(t, root)
			next := startSession(t, a)
			next.call("r", protocol.OpRecoverJournal, nil, nil)
			next.close()
			got := fake.load()[svcName]
			if got.State != StateRunning {
				t.Fatalf("service is %s after the replayed switch, want running", got.State)
			}
			if !strings.Contains(got.Config.BinaryPath, v2) {
				t.Fatalf("service runs %s, want release %s", got.Config.BinaryPath, v2)
			}
			assertNoJournal(t, root)
		})
	}
}

func startStep(service string) protocol.Request {
	return protocol.Request{Op: protocol.OpStart, Args: protocol.MustArgs(protocol.ServiceRef{Service: service})}
}

// A recovery that fails leaves the host unlocked and every later mutating
// op retries it (and fails) instead of running on top of the half-done
// apply.
func TestFailedRecoveryBlocksLaterOps(t *testing.T) {
	root := testfs.TempDir(t)
	l := state.Layout{Root: root}
	j := &state.Journal{ID: "old", Steps: []protocol.Request{startStep("missing")}, Rollback: []protocol.Request{startStep("missing-too")}, OnInterrupt: protocol.OnInterruptComplete}
	if err := j.Save(l); err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	s.callErr("l", protocol.OpLock, protocol.LockArgs{Operator: "op"}, protocol.CodeNotFound)
	if h, _ := state.ReadHolder(l); h != nil {
		t.Fatalf("lock kept after a failed recovery: %+v", h)
	}
	s.callErr("w", protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: "a.txt", Content: []byte("A")}, protocol.CodeNotFound)
	if _, ok := managedFile(root, "a.txt"); ok {
		t.Fatal("write_file ran although the interrupted apply was not recovered")
	}
	s.callErr("ap", protocol.OpApply, protocol.ApplyArgs{Steps: []protocol.Request{writeStep("b.txt", "B")}}, protocol.CodeNotFound)
	if got, _ := state.LoadJournal(l); got == nil || got.ID != "old" {
		t.Fatalf("journal after refused apply: %+v", got)
	}
	s.close()
}

// An apply whose rollback failed leaves its journal; a later apply in the
// same session must not overwrite it.
func TestApplyRefusedWhileJournalPending(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	s.callErr("ap1", protocol.OpApply, protocol.ApplyArgs{
		Steps:    []protocol.Request{startStep("missing")},
		Rollback: []protocol.Request{startStep("missing-too")},
	}, protocol.CodeNotFound)
	s.callErr("ap2", protocol.OpApply, protocol.ApplyArgs{Steps: []protocol.Request{writeStep("b.txt", "B")}}, protocol.CodeJournalPending)
	if _, ok := managedFile(root, "b.txt"); ok {
		t.Fatal("second apply ran")
	}
	if got, _ := state.LoadJournal(state.Layout{Root: root}); got == nil || got.ID != "ap1" {
		t.Fatalf("journal overwritten: %+v", got)
	}
	s.close()
}

// A lock whose pid now belongs to another live process (pid reuse) cannot
// be told from a live one; break_lock with the holder's pid and since
// clears exactly that lock.
func TestBreakLockClearsLockOfReusedPID(t *testing.T) {
	root := testfs.TempDir(t)
	host, _ := os.Hostname()
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Our own pid stands for the reused one: certainly alive.
	holder := protocol.LockHolder{User: "old", Machine: host, PID: os.Getpid(), Since: since}
	if err := os.WriteFile(filepath.Join(root, "lock.json"), protocol.MustArgs(holder), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	s.callErr("l1", protocol.OpLock, protocol.LockArgs{Operator: "op"}, protocol.CodeLocked)
	ev := s.callErr("b1", protocol.OpBreakLock, protocol.BreakLockArgs{PID: os.Getpid(), Since: since.Add(time.Second)}, protocol.CodeLocked)
	if ev.Error.Holder == nil || ev.Error.Holder.User != "old" {
		t.Fatalf("mismatching break_lock does not name the holder: %+v", ev.Error)
	}
	s.callErr("b2", protocol.OpBreakLock, protocol.BreakLockArgs{}, protocol.CodeBadRequest)
	var broken protocol.LockHolder
	s.call("b3", protocol.OpBreakLock, protocol.BreakLockArgs{PID: os.Getpid(), Since: since}, &broken)
	if broken.User != "old" {
		t.Fatalf("broke %+v", broken)
	}
	s.call("l2", protocol.OpLock, protocol.LockArgs{Operator: "op"}, nil)
	s.callErr("b4", protocol.OpBreakLock, protocol.BreakLockArgs{PID: os.Getpid(), Since: since}, protocol.CodeLocked)
	s.close()
}

// A damaged lock file is reported in facts rather than failing them.
func TestFactsReportCorruptLock(t *testing.T) {
	root := testfs.TempDir(t)
	if err := os.WriteFile(filepath.Join(root, "lock.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAgent(t, root)
	f, err := a.Facts()
	if err != nil {
		t.Fatalf("facts failed on a corrupt lock: %v", err)
	}
	if f.Lock != nil || f.LockError == "" {
		t.Fatalf("lock %+v, lock_error %q", f.Lock, f.LockError)
	}
	s := startSession(t, a)
	s.callErr("l", protocol.OpLock, protocol.LockArgs{Operator: "op"}, protocol.CodeLocked)
	s.close()
}

// Environment values may be secrets: state.json, journal.json, events and
// facts carry only names and value hashes. The values live only where the
// service gets them from (wrapper.json, the service's registry key, here
// the fake SCM's file), and survive a release switch and a replayed step.
func TestEnvValuesNeverStoredOrReported(t *testing.T) {
	const secret = "s3cret-env-value-never-store-me"
	env := map[string]string{"DB_PASSWORD": secret}
	wantHash := protocol.HashEnv(env)
	root := testfs.TempDir(t)
	s, cmd := startHelper(t, root)
	v1 := s.stage("s1", "svc.exe", []byte("v1"), 10).SHA256
	v2 := s.stage("s2", "svc.exe", []byte("v2"), 10).SHA256
	s.call("h", protocol.OpEnsureService, nativeSpec("hang", v1, "1"), nil)
	native := nativeSpec("api", v1, "1")
	native.Env = env
	wrapped := protocol.ServiceSpec{Name: "wsvc", Mode: protocol.ModeWrapped, Artifact: v1, Env: env}
	s.send("ap", protocol.OpApply, protocol.ApplyArgs{Steps: []protocol.Request{
		{Op: protocol.OpEnsureService, Args: protocol.MustArgs(native)},
		{Op: protocol.OpEnsureService, Args: protocol.MustArgs(wrapped)},
		startStep("hang"),
	}})
	waitUntil(t, "the apply to reach its last step", func() bool {
		j, err := state.LoadJournal(state.Layout{Root: root})
		return err == nil && j != nil && j.Done == 2
	})
	journal, err := os.ReadFile(filepath.Join(root, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(journal), secret) {
		t.Fatal("an environment value reached the journal")
	}
	if !strings.Contains(string(journal), wantHash["DB_PASSWORD"]) {
		t.Fatalf("journal does not name the environment by hash: %s", journal)
	}
	kill(t, cmd)

	a, fake := newTestAgent(t, root)
	var out strings.Builder
	next := startSession(t, a)
	next.call("r", protocol.OpRecoverJournal, nil, nil)
	var f protocol.Facts
	next.call("f", protocol.OpFacts, nil, &f)
	for _, sf := range f.Services {
		if sf.Name == "hang" {
			continue
		}
		if sf.EnvSHA256["DB_PASSWORD"] != wantHash["DB_PASSWORD"] || sf.LastApplied.EnvSHA256["DB_PASSWORD"] != wantHash["DB_PASSWORD"] {
			t.Fatalf("%s: env_sha256 %v last applied %v", sf.Name, sf.EnvSHA256, sf.LastApplied.EnvSHA256)
		}
	}
	// A switch reconfigures the service without values: it must keep them.
	next.call("sw1", protocol.OpSwitchRelease, protocol.SwitchArgs{Service: "api", Artifact: v2}, nil)
	next.call("sw2", protocol.OpSwitchRelease, protocol.SwitchArgs{Service: "wsvc", Artifact: v2}, nil)
	// So must a replayed step, which names the environment by hash only.
	replayed := native
	replayed.Env, replayed.EnvSHA256, replayed.Artifact = nil, wantHash, v2
	next.call("e", protocol.OpEnsureService, replayed, nil)
	next.send("f2", protocol.OpFacts, nil)
	ev, _ := next.wait("f2")
	out.Write(ev.Result)
	next.close()

	if strings.Contains(out.String(), secret) {
		t.Fatal("an environment value reached facts")
	}
	if got := fake.load()["api"].Config.Env["DB_PASSWORD"]; got != secret {
		t.Fatalf("native service env after switch and replay: %q", got)
	}
	for _, f := range listFiles(t, root) {
		b, _ := os.ReadFile(filepath.Join(root, f))
		switch f {
		case "fake-scm.json":
		case "services/wsvc/wrapper.json":
			if !bytes.Contains(b, []byte(secret)) {
				t.Fatalf("wrapper.json lost the environment: %s", b)
			}
		default:
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("an environment value reached %s", f)
			}
		}
	}
}

// Facts of a native service report the registry's environment as hashes.
func TestFactsReportNativeEnvAsHashes(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	art := s.stage("s", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Env = map[string]string{"TOKEN": "abc123-secret"}
	s.call("e", protocol.OpEnsureService, spec, nil)
	s.send("f", protocol.OpFacts, nil)
	ev, _ := s.wait("f")
	s.close()
	if strings.Contains(string(ev.Result), "abc123-secret") {
		t.Fatalf("facts echo an environment value: %s", ev.Result)
	}
	var f protocol.Facts
	json.Unmarshal(ev.Result, &f)
	if f.Services[0].EnvSHA256["TOKEN"] != protocol.HashEnv(spec.Env)["TOKEN"] {
		t.Fatalf("env_sha256 %v", f.Services[0].EnvSHA256)
	}
}

// Artifacts no release needs do not pile up: each activation removes the
// ones staged long enough ago, and keeps a freshly staged one that the
// rest of an apply may be about to use.
func TestActivationPrunesUnusedArtifacts(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	stale := s.stage("s1", "old.exe", []byte("staged long ago, never used"), 10).SHA256
	fresh := s.stage("s2", "next.exe", []byte("staged for the next service"), 10).SHA256
	api := s.stage("s3", "api.exe", []byte("api"), 10).SHA256
	long := time.Now().Add(-2 * artifactPruneGrace)
	if err := os.Chtimes(filepath.Join(root, "artifacts", stale), long, long); err != nil {
		t.Fatal(err)
	}
	var f protocol.Facts
	s.call("f1", protocol.OpFacts, nil, &f)
	if slices.Contains(f.Artifacts, stale) {
		t.Fatalf("facts list an artifact the next activation may prune: %v", f.Artifacts)
	}
	s.call("e", protocol.OpEnsureService, nativeSpec("api", api, "1"), nil)
	s.close()
	got, err := a.store.Dirs()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, stale) {
		t.Fatalf("unused artifact staged long ago survived an activation: %v", got)
	}
	if !slices.Contains(got, fresh) || !slices.Contains(got, api) {
		t.Fatalf("pruned an artifact still needed: %v (fresh %s, api %s)", got, fresh, api)
	}
}

// A stage request whose args do not decode gets exactly one error event,
// whatever is wrong with them: its frames say how long they are, so they
// are skipped and the session goes on.
func TestBadStageArgsGetExactlyOneError(t *testing.T) {
	for _, args := range []string{
		`{"sha256":"` + digest([]byte("x")) + `","size":30,"name":"a.exe","bogus":1}`,
		`{"sha256":"` + digest([]byte("x")) + `","size":"thirty","name":"a.exe"}`,
		`{"sha256":"` + digest([]byte("x")) + `","size":-1,"name":"a.exe"}`,
	} {
		a, _ := newTestAgent(t, testfs.TempDir(t))
		var in, out bytes.Buffer
		protocol.EncodeRequest(&in, protocol.Request{ID: "x", Op: protocol.OpStage, Args: json.RawMessage(args)})
		in.Write(framed([]byte("0123456789012345678901234567890"), 10, true))
		protocol.EncodeRequest(&in, protocol.Request{ID: "f", Op: protocol.OpFacts})
		if err := a.Serve(t.Context(), &in, &out); err != nil {
			t.Fatal(err)
		}
		evs := eventsOf(t, out.Bytes())
		if n := countTerminal(evs, "x"); n != 1 || evs[1].Kind != protocol.EventError || evs[1].Error.Code != protocol.CodeBadRequest {
			t.Fatalf("%s: %d terminal events for the stage: %+v", args, n, evs)
		}
		if countTerminal(evs, "f") != 1 || evs[len(evs)-1].Kind != protocol.EventResult {
			t.Fatalf("%s: session did not go on: %+v", args, evs)
		}
	}
}

func eventsOf(t *testing.T, out []byte) []protocol.Event {
	t.Helper()
	var evs []protocol.Event
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var ev protocol.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("bad event line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func countTerminal(evs []protocol.Event, id string) int {
	n := 0
	for _, ev := range evs {
		if ev.ID == id && (ev.Kind == protocol.EventResult || ev.Kind == protocol.EventError) {
			n++
		}
	}
	return n
}

// A same-named service that gsd did not create is never touched, unless
// the spec adopts it.
func TestEnsureServiceLeavesUnmanagedServiceAlone(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	fake.Install("api", InstallConfig{BinaryPath: `C:\vendor\api.exe`, Start: protocol.StartManual, DisplayName: "Vendor API"})
	s := startSession(t, a)
	res := s.stage("st", "api.exe", []byte("ours"), 5)
	s.call("w", protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: "c.yaml", Content: []byte("x")}, nil)
	s.callErr("e", protocol.OpEnsureService, nativeSpec("api", res.SHA256, "1"), protocol.CodeUnmanaged)
	if got := fake.load()["api"].Config.BinaryPath; got != `C:\vendor\api.exe` {
		t.Fatalf("the unmanaged service was changed: binary %s", got)
	}
	adopt := nativeSpec("api", res.SHA256, "1")
	adopt.Adopt = true
	s.call("e2", protocol.OpEnsureService, adopt, nil)
	if got := fake.load()["api"].Config.BinaryPath; got != res.Path {
		t.Fatalf("adopt did not take the service over: binary %s", got)
	}
	// Once adopted it is gsd's: no adopt needed any more.
	s.call("e3", protocol.OpEnsureService, nativeSpec("api", res.SHA256, "2"), nil)
	s.close()
}
