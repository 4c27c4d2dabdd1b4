package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/seal"
)

func TestHelloNamesVersionsAndOps(t *testing.T) {
	a, _ := newTestAgent(t, testfs.TempDir(t))
	s := startSession(t, a)
	h := s.hello.Hello
	if h == nil || h.ProtocolVersion != protocol.Version || h.AgentVersion != Version || h.MaxLineBytes != protocol.DefaultMaxLine {
		t.Fatalf("hello = %+v", h)
	}
	if !slices.Contains(h.Ops, protocol.OpFacts) || !slices.Contains(h.Ops, protocol.OpStage) {
		t.Fatalf("hello ops %v miss facts or stage", h.Ops)
	}
	var back protocol.Hello
	s.call("1", protocol.OpHello, protocol.HelloArgs{ProtocolVersion: 1, Client: "test"}, &back)
	s.callErr("2", protocol.OpHello, protocol.HelloArgs{ProtocolVersion: protocol.Version + 1}, protocol.CodeVersion)
	s.close()
}

// noFrames ends a stage line's (empty) stream: the terminating frame.
const noFrames = "\n\x00\x00\x00\x00"

func TestHostileInputGetsErrorAndWritesNothing(t *testing.T) {
	sha := strings.Repeat("a", 64)
	// release is a stage_release line's args for a spec of service api
	// (valid but for what edit changes).
	release := func(edit func(*protocol.ServiceSpec)) string {
		spec := protocol.ServiceSpec{Name: "api", Artifact: sha}
		edit(&spec)
		return string(protocol.MustArgs(stageArgs(spec)))
	}
	file := func(name string) string {
		return release(func(s *protocol.ServiceSpec) {
			s.Files = []protocol.FileSpec{{Name: name, Content: []byte("x")}}
		})
	}
	activate := func(edit func(*protocol.ActivateArgs)) string {
		args := protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: "r-" + strings.Repeat("0", 20), Effect: protocol.EffectRestart}
		edit(&args)
		return string(protocol.MustArgs(args))
	}
	cases := []struct {
		name, line, code string
	}{
		{"malformed JSON", `{"id":"1","op":"facts"`, protocol.CodeBadRequest},
		{"not an object", `[1,2]`, protocol.CodeBadRequest},
		{"unknown field", `{"id":"1","op":"facts","sudo":true}`, protocol.CodeBadRequest},
		{"oversized line", `{"id":"1","op":"stage_release","args":` + file(strings.Repeat("A", 8192)) + `}`, protocol.CodeLineTooLong},
		{"unknown op", `{"id":"1","op":"format_c"}`, protocol.CodeUnknownOp},
		{"an op of protocol 1", `{"id":"1","op":"write_file","args":{"service":"api","name":"a","content":""}}`, protocol.CodeUnknownOp},
		{"a chunk line of protocol 1", `{"id":"1","op":"chunk","data":"eA=="}`, protocol.CodeBadRequest},
		{"data on a normal op", `{"id":"1","op":"stage_release","args":` + file("a.txt") + `,"data":"eA=="}`, protocol.CodeBadRequest},
		{"unknown arg", `{"id":"1","op":"stage_release","args":{"kind":"service","name":"api","spec":{},"mode":"0777"}}`, protocol.CodeBadRequest},
		{"unknown spec field", `{"id":"1","op":"stage_release","args":{"kind":"service","name":"api","spec":{"name":"api","artifact":"` + sha + `","mode_bits":"0777"}}}`, protocol.CodeBadRequest},
		{"unknown kind", `{"id":"1","op":"stage_release","args":{"kind":"registry_key","name":"api","spec":{}}}`, protocol.CodeUnsupported},
		{"spec of another service", `{"id":"1","op":"stage_release","args":{"kind":"service","name":"api","spec":{"name":"web","artifact":"` + sha + `"}}}`, protocol.CodeBadRequest},
		{"dot dot", `{"id":"1","op":"stage_release","args":` + file(`..\..\windows\win.ini`) + `}`, protocol.CodeInvalidName},
		{"dot dot slash", `{"id":"1","op":"stage_release","args":` + file("conf/../../x") + `}`, protocol.CodeInvalidName},
		{"absolute", `{"id":"1","op":"stage_release","args":` + file(`C:\Windows\System32\x.dll`) + `}`, protocol.CodeInvalidName},
		{"rooted", `{"id":"1","op":"stage_release","args":` + file("/etc/passwd") + `}`, protocol.CodeInvalidName},
		{"UNC", `{"id":"1","op":"stage_release","args":` + file(`\\host\share\x`) + `}`, protocol.CodeInvalidName},
		{"alternate data stream", `{"id":"1","op":"stage_release","args":` + file("config.yaml:hidden") + `}`, protocol.CodeInvalidName},
		{"CON", `{"id":"1","op":"stage_release","args":` + file("CON") + `}`, protocol.CodeInvalidName},
		{"nul.txt", `{"id":"1","op":"stage_release","args":` + file("nul.txt") + `}`, protocol.CodeInvalidName},
		{"COM1", `{"id":"1","op":"stage_release","args":` + file("logs/COM1.log") + `}`, protocol.CodeInvalidName},
		{"LPT1", `{"id":"1","op":"stage_release","args":` + file("LPT1") + `}`, protocol.CodeInvalidName},
		{"trailing dot", `{"id":"1","op":"stage_release","args":` + file("config.") + `}`, protocol.CodeInvalidName},
		{"trailing space", `{"id":"1","op":"stage_release","args":` + file("config ") + `}`, protocol.CodeInvalidName},
		{"file path on a share", `{"id":"1","op":"stage_release","args":` + release(func(s *protocol.ServiceSpec) {
			s.Files = []protocol.FileSpec{{Name: "a.txt", Path: `\\host\share\a.txt`, Content: []byte("x")}}
		}) + `}`, protocol.CodeBadRequest},
		{"relative file path", `{"id":"1","op":"stage_release","args":` + release(func(s *protocol.ServiceSpec) {
			s.Files = []protocol.FileSpec{{Name: "a.txt", Path: `..\a.txt`, Content: []byte("x")}}
		}) + `}`, protocol.CodeBadRequest},
		{"relative log dir", `{"id":"1","op":"stage_release","args":` + release(func(s *protocol.ServiceSpec) {
			s.Mode, s.Wrapper = protocol.ModeWrapped, &protocol.WrapperSpec{LogDir: `..\logs`}
		}) + `}`, protocol.CodeBadRequest},
		{"file content not its hash", `{"id":"1","op":"stage_release","args":` + release(func(s *protocol.ServiceSpec) {
			s.Files = []protocol.FileSpec{{Name: "a.txt", SHA256: digest([]byte("y")), Content: []byte("x")}}
		}) + `}`, protocol.CodeHashMismatch},
		{"bad service name", `{"id":"1","op":"stage_release","args":{"kind":"service","name":"..","spec":{"name":"..","artifact":"` + sha + `"}}}`, protocol.CodeInvalidName},
		{"reserved service name", `{"id":"1","op":"stage_release","args":` + release(func(s *protocol.ServiceSpec) { s.Name = "NUL" }) + `}`, protocol.CodeInvalidName},
		{"activate a reserved service name", `{"id":"1","op":"activate","args":` + activate(func(a *protocol.ActivateArgs) { a.Name = "NUL" }) + `}`, protocol.CodeInvalidName},
		{"activate a release path", `{"id":"1","op":"activate","args":` + activate(func(a *protocol.ActivateArgs) { a.Release = `..\..\x` }) + `}`, protocol.CodeBadRequest},
		{"activate with an unknown effect", `{"id":"1","op":"activate","args":` + activate(func(a *protocol.ActivateArgs) { a.Effect = "reboot" }) + `}`, protocol.CodeBadRequest},
		{"activate with an unknown policy", `{"id":"1","op":"activate","args":` + activate(func(a *protocol.ActivateArgs) { a.OnInterrupt = "pray" }) + `}`, protocol.CodeBadRequest},
		{"stage name traversal", `{"id":"1","op":"stage","args":{"sha256":"` + sha + `","size":0,"name":"..\\x.exe"}}` + noFrames, protocol.CodeInvalidName},
		{"stage bad hash", `{"id":"1","op":"stage","args":{"sha256":"../../x","size":0,"name":"x.exe"}}` + noFrames, protocol.CodeInvalidName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(testfs.TempDir(t), "root")
			a, _ := newTestAgent(t, root)
			a.opts.MaxLine = 4096
			s := startSession(t, a)
			s.sendLine(c.line)
			ev := s.next()
			if ev.Kind != protocol.EventError || ev.Error == nil || ev.Error.Code != c.code {
				t.Fatalf("got %+v (error %+v), want error %s", ev, ev.Error, c.code)
			}
			// The agent is still usable after the bad line.
			s.call("after", protocol.OpFacts, nil, nil)
			s.close()
			if files := listFiles(t, root); len(files) != 0 {
				t.Fatalf("hostile input wrote %v", files)
			}
		})
	}
}

func nativeSpec(name, artifact, version string) protocol.ServiceSpec {
	return protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeNative, Artifact: artifact, Version: version,
		DisplayName: "Orders API", Description: "Serves /orders", Args: []string{"-port", "8080"},
		Start: protocol.StartDelayed, Account: protocol.Account{Name: `NT SERVICE\` + name},
		DependsOn: []string{"Tcpip"}, Env: map[string]string{"GOMAXPROCS": "4"},
		Recovery: &protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "restart", DelayMS: 5000}}, ResetAfterMS: 86400000, OnNonCrash: true},
	}
}

func TestServiceLifecycleReleasesAndRollback(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	a.opts.KeepReleases = 3 // so that the fourth release drops the first
	s := startSession(t, a)
	var arts []string
	for i := 0; i < 4; i++ {
		content := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		res := s.stage("st"+string(rune('0'+i)), "api.exe", content, 300)
		arts = append(arts, res.SHA256)
	}
	spec := nativeSpec("api", arts[0], "1.0")
	spec.Files = []protocol.FileSpec{{Name: `conf\app.yaml`, Content: []byte("port: 1")}}
	id0, res := s.deploy("d0", spec, protocol.EffectStart)
	if !res.Changed || !res.Running || res.From != "" || res.To != id0 {
		t.Fatalf("first activation: %+v", res)
	}
	// The same release again is the same id, and changes nothing.
	if again := s.stageRelease("again", spec); again != id0 {
		t.Fatalf("the same release staged twice got ids %s and %s", id0, again)
	}
	if res := s.activate("d0b", "api", id0, protocol.EffectNone); res.Changed {
		t.Fatalf("activating the current release again: %+v", res)
	}
	got, err := os.ReadFile(filepath.Join(root, "services", "api", "files", "conf", "app.yaml"))
	if err != nil || string(got) != "port: 1" {
		t.Fatalf("file: %q %v", got, err)
	}
	ids := []string{id0}
	for i := 1; i < 4; i++ {
		spec := nativeSpec("api", arts[i], "1."+string(rune('0'+i)))
		spec.Env["RELEASE"] = string(rune('0' + i))
		id, res := s.deploy("d"+string(rune('0'+i)), spec, protocol.EffectRestart)
		if !res.Changed || !res.Running || res.From != ids[i-1] {
			t.Fatalf("activation %d: %+v", i, res)
		}
		ids = append(ids, id)
	}
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	api := f.Services[0]
	if api.Current.ID != ids[3] || api.Previous.ID != ids[2] || len(api.Releases) != 3 {
		t.Fatalf("releases: %+v", api.Releases)
	}
	if got := api.Current.Changes; !slices.Equal(got, []string{"binary", "version", "env.RELEASE"}) {
		t.Errorf("changes recorded with the release: %v", got)
	}
	if api.BinarySHA256 != arts[3] || api.Status.State != StateRunning {
		t.Fatalf("facts: sha %s state %+v", api.BinarySHA256, api.Status)
	}
	if slices.Contains(f.Artifacts, arts[0]) {
		t.Fatalf("artifact of the dropped release was kept: %v", f.Artifacts)
	}
	if _, err := os.Stat(filepath.Join(root, "releases", id0)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the dropped release is still on disk: %v", err)
	}
	// The file of release 0 is gone with it: release 1 has none.
	if _, err := os.Stat(filepath.Join(root, "services", "api", "files", "conf", "app.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file the current release does not have is still there: %v", err)
	}
	// Rollback is activating the previous release, whole.
	if res := s.activate("rb", "api", ids[2], protocol.EffectRestart); res.To != ids[2] || !res.Running {
		t.Fatalf("rollback: %+v", res)
	}
	if env := fake.load()["api"].Config.Env; env["RELEASE"] != "2" {
		t.Fatalf("after rollback the environment is %v, want release 2's", env)
	}
	if res := s.activate("reload", "api", ids[2], protocol.EffectReload); res.Changed {
		t.Fatalf("reload changed the release: %+v", res)
	}
	if fake.load()["api"].Reloads != 1 {
		t.Fatal("reload did not send PARAMCHANGE")
	}
	s.call("del", protocol.OpDeleteService, protocol.ServiceRef{Service: "api", Purge: true}, nil)
	s.call("f2", protocol.OpFacts, nil, &f)
	if len(f.Services) != 0 || len(f.Artifacts) != 0 {
		t.Fatalf("after purge: services %+v artifacts %v", f.Services, f.Artifacts)
	}
	var again map[string]bool
	s.call("del2", protocol.OpDeleteService, protocol.ServiceRef{Service: "api"}, &again)
	if again["existed"] {
		t.Fatal("deleting twice claims the service existed")
	}
	s.close()
}

func TestKeepReleasesIsConfigurable(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	a.opts.KeepReleases = 2
	s := startSession(t, a)
	var ids []string
	for i := 0; i < 3; i++ {
		art := s.stage("s"+string(rune('0'+i)), "x.exe", []byte{byte(i)}, 10).SHA256
		id, _ := s.deploy("d"+string(rune('0'+i)), nativeSpec("x", art, ""), protocol.EffectNone)
		ids = append(ids, id)
	}
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	if n := len(f.Services[0].Releases); n != 2 || f.Host.KeepReleases != 2 {
		t.Fatalf("kept %d releases, keep_releases %d", n, f.Host.KeepReleases)
	}
	// The release that fell out of history is gone from the store too.
	if _, err := os.Stat(filepath.Join(root, "releases", ids[0])); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("release %s is still stored: %v", ids[0], err)
	}
	s.close()
}

func TestFactsReportWineGapsFromAgentState(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	fake.gaps = map[string]string{
		"recovery":      "not readable on this host: Invalid level",
		"delayed_start": "not readable on this host: Invalid level",
	}
	s := startSession(t, a)
	art := s.stage("s", "api.exe", []byte("bin"), 10).SHA256
	id := s.stageRelease("st", nativeSpec("api", art, "1"))
	var res protocol.ActivateResult
	progress := s.call("a", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id, Effect: protocol.EffectNone}, &res)
	if len(res.Recorded) != 2 || !anyMessage(progress, "recovery written") || !anyMessage(progress, "delayed_start written") {
		t.Fatalf("the activation did not report the gaps: %+v, progress %+v", res, progress)
	}
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	api := f.Services[0]
	if api.Recovery == nil || api.Recovery.ResetAfterMS != 86400000 || api.Sources["recovery"] != protocol.SourceAgentState {
		t.Fatalf("recovery: %+v sources %v", api.Recovery, api.Sources)
	}
	if !api.Config.DelayedStart || api.Sources["delayed_start"] != protocol.SourceAgentState {
		t.Fatalf("delayed start not reported from state: %+v", api.Config)
	}
	if !strings.Contains(api.Unreadable["recovery"], "not readable on this host") {
		t.Fatalf("unreadable: %v", api.Unreadable)
	}
	s.close()
}

// teeSession is a session whose every event line is also kept in out.
func teeSession(t *testing.T, a *Agent, out *bytes.Buffer) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, in: inW, done: make(chan error, 1)}
	go func() {
		err := a.Serve(t.Context(), inR, outW)
		outW.Close()
		s.done <- err
	}()
	return s.attach(io.TeeReader(outR, out))
}

// openSealed opens every release's sealed secrets under root, by release
// id, with the key the agent keeps there (this is not Windows: no DPAPI).
func openSealed(t *testing.T, root string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	sealed, _ := filepath.Glob(filepath.Join(root, "releases", "*", "secrets.sealed"))
	for _, p := range sealed {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := seal.ForMachine(root).Open(b)
		if err != nil {
			t.Fatalf("%s does not open: %v", p, err)
		}
		var m map[string]string
		if err := json.Unmarshal(plain, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[filepath.Base(filepath.Dir(p))] = m
	}
	return out
}

// holds reports whether b holds secret as it is or as JSON writes it
// (which escapes &, < and >).
func holds(b []byte, secret string) bool {
	quoted, _ := json.Marshal(secret)
	return bytes.Contains(b, []byte(secret)) || bytes.Contains(b, quoted[1:len(quoted)-1])
}

func TestPasswordsNeverReachEventsOrFiles(t *testing.T) {
	const secret = "Tr0ub4dor&3-never-log-me"
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	var out bytes.Buffer
	s := teeSession(t, a, &out)
	art := s.stage("s", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\svc-api`, Password: secret}
	id1, _ := s.deploy("d1", spec, protocol.EffectNone)
	if fake.passwords["api"] != secret {
		t.Fatal("the service manager was not given the password")
	}
	// An activation that fails and is reverted journals and replays the
	// release before, password included, through the sealed store.
	spec.Version = "2"
	id2 := s.stageRelease("st2", spec)
	fake.failStart = "api"
	s.callErr("a2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: id2, Effect: protocol.EffectStart}, protocol.CodeActivationFailed)
	fake.failStart = ""
	s.call("f", protocol.OpFacts, nil, nil)
	// Malformed or mismatched requests carrying the password must not
	// echo it back: a spec with the password inline and a stray field, one
	// with it inline only, and one whose secrets carry it unasked.
	inline := fmt.Sprintf(`{"name":"api","artifact":%q,"account":{"name":"x","password":%q}`, art, secret)
	s.callErr("bad1", protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: protocol.KindService, Name: "api", Spec: json.RawMessage(inline + `,"bogus":1}`)}, protocol.CodeBadRequest)
	s.callErr("bad2", protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: protocol.KindService, Name: "api", Spec: json.RawMessage(inline + `}`)}, protocol.CodeBadRequest)
	s.callErr("bad3", protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: protocol.KindService, Name: "api", Spec: protocol.MustArgs(protocol.ServiceSpec{Name: "api", Artifact: art}),
		Secrets: map[string]string{protocol.SecretPassword: secret}}, protocol.CodeBadRequest)
	s.close()

	if !strings.Contains(out.String(), `"id":"f","event":"result"`) {
		t.Fatalf("session did not complete: %s", out.String())
	}
	if holds(out.Bytes(), secret) {
		t.Fatal("password reached an event")
	}
	scanned := map[string]bool{}
	for _, f := range listFiles(t, root) {
		b, _ := os.ReadFile(filepath.Join(root, f))
		if holds(b, secret) {
			t.Fatalf("password reached %s", f)
		}
		scanned[path.Base(f)] = true
	}
	if !scanned["release.json"] || !scanned["secrets.sealed"] || !scanned["state.json"] {
		t.Fatalf("the release store was not where the test looks: %v", listFiles(t, root))
	}
	// The password is kept, sealed, with both releases, and opens back.
	opened := openSealed(t, root)
	for _, id := range []string{id1, id2} {
		if got := opened[id][protocol.SecretPassword]; got != secret {
			t.Errorf("release %s: sealed password %q, want the one given", id, got)
		}
	}
}

func TestSecondAgentSeesLockAndHolder(t *testing.T) {
	root := testfs.TempDir(t)
	first, _ := newTestAgent(t, root)
	s1 := startSession(t, first)
	var holder protocol.LockHolder
	s1.call("l", protocol.OpLock, protocol.LockArgs{Operator: "alice@laptop"}, &holder)
	art := s1.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")

	second, _ := newTestAgent(t, root)
	s2 := startSession(t, second)
	ev := s2.callErr("w", protocol.OpStageRelease, stageArgs(spec), protocol.CodeLocked)
	h := ev.Error.Holder
	if h == nil || h.Operator != "alice@laptop" || h.PID != os.Getpid() || h.Machine == "" || h.User == "" || h.Since.IsZero() {
		t.Fatalf("holder not named: %+v", h)
	}
	if !strings.Contains(ev.Error.Message, "alice@laptop") {
		t.Fatalf("message %q does not name the holder", ev.Error.Message)
	}
	// Facts still work while locked, and name the holder.
	var f protocol.Facts
	s2.call("f", protocol.OpFacts, nil, &f)
	if f.Lock == nil || f.Lock.Operator != "alice@laptop" {
		t.Fatalf("facts lock: %+v", f.Lock)
	}
	if _, err := os.Stat(filepath.Join(root, "releases")); err == nil {
		t.Fatal("locked-out agent wrote a release")
	}
	s1.close() // releases the lock
	s2.stageRelease("w2", spec)
	s2.close()
}

func TestSecondAgentProcessSeesLockHolderPID(t *testing.T) {
	root := testfs.TempDir(t)
	s1, cmd := startHelper(t, root)
	var holder protocol.LockHolder
	s1.call("l", protocol.OpLock, protocol.LockArgs{Operator: "ci-pipeline-42"}, &holder)
	if holder.PID != cmd.Process.Pid {
		t.Fatalf("holder pid %d, want the helper's %d", holder.PID, cmd.Process.Pid)
	}
	a, _ := newTestAgent(t, root)
	s2 := startSession(t, a)
	ev := s2.callErr("x", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: "r-" + strings.Repeat("0", 20), Effect: protocol.EffectRestart}, protocol.CodeLocked)
	if h := ev.Error.Holder; h == nil || h.PID != cmd.Process.Pid || h.Operator != "ci-pipeline-42" {
		t.Fatalf("holder %+v", ev.Error.Holder)
	}
	s2.close()
	if _, err := os.Stat(filepath.Join(root, "journal.json")); err == nil {
		t.Fatal("locked-out activation wrote a journal")
	}
}
