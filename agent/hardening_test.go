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
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
)

// The root is locked down before the agent trusts anything in it. On
// Linux the counterpart of the Windows DACL is mode 0700.
func TestLockRestrictsRootAccess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the Windows DACL is checked in package winsec")
	}
	root := testfs.TempDir(t)
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Root: root, Services: newFakeServices(root)})
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

// A binary planted in an artifact's directory never becomes a service:
// a release of it is refused when it is staged.
func TestStageReleaseRefusesUnverifiedArtifact(t *testing.T) {
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
	s.callErr("e", protocol.OpStageRelease, stageArgs(nativeSpec("api", sha, "1")), protocol.CodeNotFound)
	if fake.load()["api"] != nil {
		t.Fatal("a service was installed with the planted binary")
	}
	if ids, _ := a.releases.IDs(); len(ids) != 0 {
		t.Fatalf("a release of the planted binary was stored: %v", ids)
	}
	res := s.stage("st", "api.exe", []byte("the real api"), 5)
	if res.AlreadyPresent {
		t.Fatal("the planted file was taken as the staged artifact")
	}
	s.deploy("e2", nativeSpec("api", sha, "1"), protocol.EffectNone)
	if got := fake.load()["api"].Config.BinaryPath; got != res.Path {
		t.Fatalf("binary path %s, want %s", got, res.Path)
	}
	if b, _ := os.ReadFile(res.Path); string(b) != "the real api" {
		t.Fatalf("binary content %q", b)
	}
	s.close()
}

// An agent killed in the middle of switching a running service's release
// (inside its stop, after the service stopped, or inside the start after
// state.json was saved) must leave a service that the recovery of its
// journal starts again, on the new release.
func TestKilledActivationRestartsServiceOnRecovery(t *testing.T) {
	for _, svcName := range []string{"hang", "hangstop"} {
		t.Run(svcName, func(t *testing.T) {
			root := testfs.TempDir(t)
			s, cmd := startHelper(t, root)
			v1 := s.stage("s1", "svc.exe", []byte("v1"), 10).SHA256
			v2 := s.stage("s2", "svc.exe", []byte("v2"), 10).SHA256
			s.deploy("d1", nativeSpec(svcName, v1, "1"), protocol.EffectNone)
			fake := newFakeServices(root)
			fake.update(svcName, func(fs *fakeService) error { fs.State = StateRunning; return nil })
			id2 := s.stageRelease("st2", nativeSpec(svcName, v2, "2"))
			s.send("a2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: svcName, Release: id2, Effect: protocol.EffectRestart, OnInterrupt: protocol.OnFailureComplete})
			waitUntil(t, "the activation to stop the service", func() bool {
				if fake.load()[svcName].State != StateStopped {
					return false
				}
				if svcName == "hangstop" {
					return true // killed inside Stop
				}
				// killed inside Start, after the new release was saved
				st, err := state.Load(state.Layout{Root: root})
				return err == nil && st.Services[svcName] != nil && st.Services[svcName].Current().ID == id2
			})
			kill(t, cmd)

			a, _ := newTestAgent(t, root)
			next := startSession(t, a)
			next.call("r", protocol.OpRecoverJournal, nil, nil)
			next.close()
			got := fake.load()[svcName]
			if got.State != StateRunning {
				t.Fatalf("service is %s after the recovery, want running", got.State)
			}
			if !strings.Contains(got.Config.BinaryPath, v2) {
				t.Fatalf("service runs %s, want release %s", got.Config.BinaryPath, v2)
			}
			assertNoJournal(t, root)
		})
	}
}

// A recovery that fails leaves the host unlocked and every later mutating
// op retries it (and fails) instead of running on top of the half-done
// activation.
func TestFailedRecoveryBlocksLaterOps(t *testing.T) {
	root := testfs.TempDir(t)
	l := state.Layout{Root: root}
	// An earlier session staged what the refused ops would use.
	a0, _ := newTestAgent(t, root)
	s0 := startSession(t, a0)
	art := s0.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Files = []protocol.FileSpec{{Name: "a.txt", Content: []byte("A")}}
	staged := s0.stageRelease("sr", spec)
	s0.close()
	// The activation's release is gone, so it can be neither finished nor
	// reverted.
	missing := "r-" + strings.Repeat("0", 20)
	j := &state.Journal{ID: "old", Kind: protocol.KindService, Name: "api", To: missing, Effect: protocol.EffectStart, OnInterrupt: protocol.OnFailureComplete}
	if err := j.Save(l); err != nil {
		t.Fatal(err)
	}
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	s.callErr("l", protocol.OpLock, protocol.LockArgs{Operator: "op"}, protocol.CodeFailed)
	if h, _ := state.ReadHolder(l); h != nil {
		t.Fatalf("lock kept after a failed recovery: %+v", h)
	}
	spec.Version = "2"
	s.callErr("sr2", protocol.OpStageRelease, stageArgs(spec), protocol.CodeFailed)
	if ids, _ := a.releases.IDs(); len(ids) != 1 || ids[0] != staged {
		t.Fatalf("a release was stored although the interrupted activation was not recovered: %v", ids)
	}
	ev := s.callErr("a", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: staged, Effect: protocol.EffectStart}, protocol.CodeFailed)
	if !strings.Contains(ev.Error.Message, "recovering interrupted") {
		t.Fatalf("activate refused with %q, not for the recovery", ev.Error.Message)
	}
	if fake.load()["api"] != nil || len(listFiles(t, filepath.Join(root, "services"))) != 0 {
		t.Fatal("activate ran although the interrupted activation was not recovered")
	}
	if got, _ := state.LoadJournal(l); got == nil || got.ID != "old" {
		t.Fatalf("journal after refused activation: %+v", got)
	}
	s.close()
}

// An activation whose return to the release before failed too leaves its
// journal; a later activation in the same session (which holds the lock,
// so does not recover again) must not run over it.
func TestActivateRefusedWhileRevertPending(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	v1 := s.stage("s1", "api.exe", []byte("v1"), 10).SHA256
	v2 := s.stage("s2", "api.exe", []byte("v2"), 10).SHA256
	id1, _ := s.deploy("d1", nativeSpec("api", v1, "1"), protocol.EffectStart)
	id2 := s.stageRelease("st2", nativeSpec("api", v2, "2"))
	spec3 := nativeSpec("api", v2, "3")
	spec3.Files = []protocol.FileSpec{{Name: "b.txt", Content: []byte("B")}}
	id3 := s.stageRelease("st3", spec3)
	fake.failStart, fake.failStartAlways = "api", true // v2 does not start, and neither does v1 again
	ev := s.callErr("a2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id2, Effect: protocol.EffectRestart}, protocol.CodeFailed)
	if !strings.Contains(ev.Error.Message, "failed too") {
		t.Fatalf("error %q does not say the return failed", ev.Error.Message)
	}
	if j, _ := state.LoadJournal(state.Layout{Root: root}); j == nil || j.ID != "a2" || !j.RollingBack {
		t.Fatalf("journal after the failed return: %+v", j)
	}
	s.callErr("a3", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id3, Effect: protocol.EffectRestart}, protocol.CodeJournalPending)
	if _, err := os.Stat(filepath.Join(root, "services", "api", "files", "b.txt")); err == nil {
		t.Fatal("the refused activation ran")
	}
	if got, _ := state.LoadJournal(state.Layout{Root: root}); got == nil || got.ID != "a2" || got.To != id2 || got.From != id1 {
		t.Fatalf("journal overwritten: %+v", got)
	}
	// Once the service can start, recovering the journal returns it to v1.
	fake.failStart, fake.failStartAlways = "", false
	s.call("r", protocol.OpRecoverJournal, nil, nil)
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	if cur := f.Services[0].Current; cur == nil || cur.ID != id1 || fake.load()["api"].State != StateRunning {
		t.Fatalf("after recovery: current %+v, state %s", cur, fake.load()["api"].State)
	}
	assertNoJournal(t, root)
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

// Environment values may be secrets, and so may a sensitive file's content
// and sensitive arguments: state.json, journal.json, the release store,
// events and facts carry only names and hashes. The values live only
// sealed in the release store and where the service gets them from
// (wrapper.json, the service's registry key, here the fake SCM's file, and
// the managed file itself), and survive an activation replayed after a
// crash, a new release and a return to the one before.
func TestEnvValuesNeverStoredOrReported(t *testing.T) {
	const secret = "s3cret-env-value-never-store-me"
	const fileSecret = "s3cret-file-content-never-store-me"
	const argSecret = "s3cret-argument-never-store-me"
	env := map[string]string{"DB_PASSWORD": secret}
	wantHash := protocol.HashEnv(env)
	root := testfs.TempDir(t)
	s, cmd := startHelper(t, root)
	v1 := s.stage("s1", "svc.exe", []byte("v1"), 10).SHA256
	v2 := s.stage("s2", "svc.exe", []byte("v2"), 10).SHA256
	wrapped := protocol.ServiceSpec{Name: "wsvc", Mode: protocol.ModeWrapped, Artifact: v1, Env: env}
	w1, _ := s.deploy("dw1", wrapped, protocol.EffectStart)
	native := nativeSpec("api", v1, "1")
	native.Env = env
	native.Args, native.SensitiveArgs = []string{"-token", argSecret}, true
	native.Files = []protocol.FileSpec{
		{Name: "secret.yaml", Content: []byte("token: " + fileSecret + "\n"), Sensitive: true},
		{Name: "app.yaml", Content: []byte("port: 8080\n")},
	}
	hanging := native
	hanging.Args = append(slices.Clone(native.Args), "-hang-on-start") // the helper's start never returns
	n1 := s.stageRelease("sn1", hanging)
	s.send("an1", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: n1, Effect: protocol.EffectStart})
	waitUntil(t, "the activation to reach its start", func() bool {
		j, err := state.LoadJournal(state.Layout{Root: root})
		st, serr := state.Load(state.Layout{Root: root})
		return err == nil && j != nil && serr == nil && st.Services["api"] != nil && st.Services["api"].Current() != nil
	})
	journal, err := os.ReadFile(filepath.Join(root, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{secret, fileSecret, argSecret} {
		if strings.Contains(string(journal), v) {
			t.Fatalf("a secret value reached the journal: %s", journal)
		}
	}
	if !strings.Contains(string(journal), n1) {
		t.Fatalf("journal does not name the release: %s", journal)
	}
	stored, err := os.ReadFile(filepath.Join(root, "releases", n1, "release.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), wantHash["DB_PASSWORD"]) {
		t.Fatalf("the stored release does not name the environment by hash: %s", stored)
	}
	kill(t, cmd)

	a, fake := newTestAgent(t, root)
	var out strings.Builder
	next := startSession(t, a)
	next.call("r", protocol.OpRecoverJournal, nil, nil)
	var f protocol.Facts
	next.call("f", protocol.OpFacts, nil, &f)
	if len(f.Services) != 2 {
		t.Fatalf("facts services %+v", f.Services)
	}
	for _, sf := range f.Services {
		if sf.EnvSHA256["DB_PASSWORD"] != wantHash["DB_PASSWORD"] || sf.LastApplied.EnvSHA256["DB_PASSWORD"] != wantHash["DB_PASSWORD"] {
			t.Fatalf("%s: env_sha256 %v last applied %v", sf.Name, sf.EnvSHA256, sf.LastApplied.EnvSHA256)
		}
	}
	if got := fake.load()["api"]; got.State != StateRunning || got.Config.Env["DB_PASSWORD"] != secret || !slices.Contains(got.Config.Args, argSecret) {
		t.Fatalf("native service after the recovery: %+v", got)
	}
	// A new release of each, then a return to the first: every activation
	// hands the values, from the sealed store.
	native.Artifact, wrapped.Artifact = v2, v2
	n2, _ := next.deploy("dn2", native, protocol.EffectRestart)
	w2, _ := next.deploy("dw2", wrapped, protocol.EffectRestart)
	next.activate("rn1", "api", n1, protocol.EffectRestart)
	next.activate("rw1", "wsvc", w1, protocol.EffectRestart)
	next.send("f2", protocol.OpFacts, nil)
	ev, _ := next.wait("f2")
	out.Write(ev.Result)
	next.close()

	if strings.Contains(out.String(), secret) || strings.Contains(out.String(), fileSecret) {
		t.Fatal("a secret value reached facts")
	}
	// A native service's command line is reported as the service manager
	// has it (the plan compares it), sensitive or not; what gsd applied is
	// reported without it.
	var f2 protocol.Facts
	if err := json.Unmarshal([]byte(out.String()), &f2); err != nil {
		t.Fatal(err)
	}
	for _, sf := range f2.Services {
		if last, _ := json.Marshal(sf.LastApplied); strings.Contains(string(last), argSecret) {
			t.Fatalf("%s: a sensitive argument reached last_applied: %s", sf.Name, last)
		}
	}
	got := fake.load()["api"]
	if got.Config.Env["DB_PASSWORD"] != secret || !slices.Contains(got.Config.Args, argSecret) || !strings.Contains(got.Config.BinaryPath, v1) {
		t.Fatalf("native service after a new release and a return: %+v", got.Config)
	}
	wc, err := servicehost.Load(a.layout.WrapperConfig("wsvc"))
	if err != nil || wc.Env["DB_PASSWORD"] != secret || !strings.Contains(wc.Program, v1) {
		t.Fatalf("wrapper config after a new release and a return: %+v %v", wc, err)
	}
	scanned := map[string]bool{}
	for _, f := range listFiles(t, root) {
		b, _ := os.ReadFile(filepath.Join(root, f))
		if parts := strings.Split(f, "/"); len(parts) > 2 && parts[0] == "releases" {
			scanned[parts[2]] = true // release.json, secrets.sealed, files
		}
		switch f {
		case "fake-scm.json":
		case "services/wsvc/wrapper.json":
			if !bytes.Contains(b, []byte(secret)) {
				t.Fatalf("wrapper.json lost the environment: %s", b)
			}
		case "services/api/files/secret.yaml":
			if !bytes.Contains(b, []byte(fileSecret)) {
				t.Fatalf("the sensitive file lost its content: %q", b)
			}
		default:
			for _, v := range []string{secret, fileSecret, argSecret} {
				if bytes.Contains(b, []byte(v)) {
					t.Fatalf("a secret value reached %s", f)
				}
			}
		}
	}
	if !scanned["release.json"] || !scanned["secrets.sealed"] || !scanned["files"] {
		t.Fatalf("the release store was not where the test looks: %v", listFiles(t, root))
	}
	// What is sealed opens back: each release keeps its own values.
	opened := openSealed(t, root)
	for _, id := range []string{n1, n2} {
		got := opened[id]
		if got[protocol.SecretEnv("DB_PASSWORD")] != secret || got[protocol.SecretFile("secret.yaml")] != "token: "+fileSecret+"\n" || !strings.Contains(got[protocol.SecretArgs], argSecret) {
			t.Errorf("release %s: sealed secrets %v", id, got)
		}
	}
	for _, id := range []string{w1, w2} {
		if got := opened[id]; len(got) != 1 || got[protocol.SecretEnv("DB_PASSWORD")] != secret {
			t.Errorf("release %s: sealed secrets %v", id, got)
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
	s.deploy("e", spec, protocol.EffectNone)
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
	s.deploy("e", nativeSpec("api", api, "1"), protocol.EffectNone)
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
// the spec adopts it. A release of it may be staged; activating it is
// refused before anything changes.
func TestActivateLeavesUnmanagedServiceAlone(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	fake.Install("api", InstallConfig{BinaryPath: `C:\vendor\api.exe`, Start: protocol.StartManual, DisplayName: "Vendor API"})
	s := startSession(t, a)
	res := s.stage("st", "api.exe", []byte("ours"), 5)
	spec := nativeSpec("api", res.SHA256, "1")
	spec.Files = []protocol.FileSpec{{Name: "c.yaml", Content: []byte("x")}}
	id := s.stageRelease("sr", spec)
	s.callErr("e", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id, Effect: protocol.EffectRestart}, protocol.CodeUnmanaged)
	if got := fake.load()["api"].Config.BinaryPath; got != `C:\vendor\api.exe` {
		t.Fatalf("the unmanaged service was changed: binary %s", got)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "api", "files", "c.yaml")); err == nil {
		t.Fatal("the refused activation wrote the release's file")
	}
	assertNoJournal(t, root)
	adopt := spec
	adopt.Adopt = true
	s.deploy("e2", adopt, protocol.EffectNone)
	if got := fake.load()["api"].Config.BinaryPath; got != res.Path {
		t.Fatalf("adopt did not take the service over: binary %s", got)
	}
	// Once adopted it is gsd's: no adopt needed any more.
	s.deploy("e3", nativeSpec("api", res.SHA256, "2"), protocol.EffectNone)
	s.close()
}

// An agent that died while undoing the first activation of a service
// (no release before) leaves a journal rolling back; the recovery stops
// the new release, as the dead agent was doing, and never starts it.
func TestInterruptedUndoOfNewServiceStopsIt(t *testing.T) {
	root := testfs.TempDir(t)
	a0, _ := newTestAgent(t, root)
	s0 := startSession(t, a0)
	art := s0.stage("st", "api.exe", []byte("bin"), 10).SHA256
	staged := s0.stageRelease("sr", nativeSpec("api", art, "1"))
	s0.close()
	j := &state.Journal{ID: "old", Kind: protocol.KindService, Name: "api", To: staged, Effect: protocol.EffectStart, RollingBack: true}
	if err := j.Save(state.Layout{Root: root}); err != nil {
		t.Fatal(err)
	}
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	s.call("r", protocol.OpRecoverJournal, nil, nil)
	s.close()
	if got := fake.load()["api"]; got == nil || got.State != StateStopped {
		t.Fatalf("service after the recovery: %+v, want installed and stopped", got)
	}
	assertNoJournal(t, root)
}
