package agent

import (
	"bytes"
	"encoding/json"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
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
	file := func(name string) string {
		return string(protocol.MustArgs(protocol.WriteFileArgs{Service: "api", Name: name, Content: []byte("x")}))
	}
	cases := []struct {
		name, line, code string
	}{
		{"malformed JSON", `{"id":"1","op":"facts"`, protocol.CodeBadRequest},
		{"not an object", `[1,2]`, protocol.CodeBadRequest},
		{"unknown field", `{"id":"1","op":"facts","sudo":true}`, protocol.CodeBadRequest},
		{"oversized line", `{"id":"1","op":"write_file","args":{"service":"api","name":"a","content":"` + strings.Repeat("A", 8192) + `"}}`, protocol.CodeLineTooLong},
		{"unknown op", `{"id":"1","op":"format_c"}`, protocol.CodeUnknownOp},
		{"a chunk line of protocol 1", `{"id":"1","op":"chunk","data":"eA=="}`, protocol.CodeBadRequest},
		{"data on a normal op", `{"id":"1","op":"write_file","args":` + file("a.txt") + `,"data":"eA=="}`, protocol.CodeBadRequest},
		{"unknown arg", `{"id":"1","op":"write_file","args":{"service":"api","name":"a","content":"","mode":"0777"}}`, protocol.CodeBadRequest},
		{"dot dot", `{"id":"1","op":"write_file","args":` + file(`..\..\windows\win.ini`) + `}`, protocol.CodeInvalidName},
		{"dot dot slash", `{"id":"1","op":"write_file","args":` + file("conf/../../x") + `}`, protocol.CodeInvalidName},
		{"absolute", `{"id":"1","op":"write_file","args":` + file(`C:\Windows\System32\x.dll`) + `}`, protocol.CodeInvalidName},
		{"rooted", `{"id":"1","op":"write_file","args":` + file("/etc/passwd") + `}`, protocol.CodeInvalidName},
		{"UNC", `{"id":"1","op":"write_file","args":` + file(`\\host\share\x`) + `}`, protocol.CodeInvalidName},
		{"alternate data stream", `{"id":"1","op":"write_file","args":` + file("config.yaml:hidden") + `}`, protocol.CodeInvalidName},
		{"CON", `{"id":"1","op":"write_file","args":` + file("CON") + `}`, protocol.CodeInvalidName},
		{"nul.txt", `{"id":"1","op":"write_file","args":` + file("nul.txt") + `}`, protocol.CodeInvalidName},
		{"COM1", `{"id":"1","op":"write_file","args":` + file("logs/COM1.log") + `}`, protocol.CodeInvalidName},
		{"LPT1", `{"id":"1","op":"write_file","args":` + file("LPT1") + `}`, protocol.CodeInvalidName},
		{"trailing dot", `{"id":"1","op":"write_file","args":` + file("config.") + `}`, protocol.CodeInvalidName},
		{"trailing space", `{"id":"1","op":"write_file","args":` + file("config ") + `}`, protocol.CodeInvalidName},
		{"bad service name", `{"id":"1","op":"write_file","args":{"service":"..","name":"a","content":""}}`, protocol.CodeInvalidName},
		{"reserved service name", `{"id":"1","op":"ensure_service","args":{"name":"NUL","artifact":"` + strings.Repeat("a", 64) + `"}}`, protocol.CodeInvalidName},
		{"stage name traversal", `{"id":"1","op":"stage","args":{"sha256":"` + strings.Repeat("a", 64) + `","size":0,"name":"..\\x.exe"}}` + noFrames, protocol.CodeInvalidName},
		{"stage bad hash", `{"id":"1","op":"stage","args":{"sha256":"../../x","size":0,"name":"x.exe"}}` + noFrames, protocol.CodeInvalidName},
		{"apply with unjournaled step", `{"id":"1","op":"apply","args":{"steps":[{"id":"s","op":"stage"}]}}`, protocol.CodeBadRequest},
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

func TestWriteFileIsAtomicAndIdempotent(t *testing.T) {
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	s := startSession(t, a)
	var r1, r2 protocol.FileResult
	s.call("1", protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: `conf\app.yaml`, Content: []byte("port: 1")}, &r1)
	s.call("2", protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: "conf/app.yaml", Content: []byte("port: 1")}, &r2)
	if !r1.Changed || r2.Changed || r1.SHA256 != digest([]byte("port: 1")) {
		t.Fatalf("first %+v, second %+v", r1, r2)
	}
	got, err := os.ReadFile(filepath.Join(root, "services", "api", "files", "conf", "app.yaml"))
	if err != nil || string(got) != "port: 1" {
		t.Fatalf("file: %q %v", got, err)
	}
	var f protocol.Facts
	s.call("3", protocol.OpFacts, nil, &f)
	if len(f.Services) != 1 || len(f.Services[0].Files) != 1 || f.Services[0].Files[0].SHA256 != r1.SHA256 {
		t.Fatalf("facts files: %+v", f.Services)
	}
	s.close()
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
	s := startSession(t, a)
	var arts []string
	for i := 0; i < 4; i++ {
		content := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		res := s.stage("st"+string(rune('0'+i)), "api.exe", content, 300)
		arts = append(arts, res.SHA256)
	}
	var ens ensureResult
	s.call("e1", protocol.OpEnsureService, nativeSpec("api", arts[0], "1.0"), &ens)
	if !ens.Created || !ens.ReleaseChanged || !ens.Changed {
		t.Fatalf("ensure: %+v", ens)
	}
	s.call("e2", protocol.OpEnsureService, nativeSpec("api", arts[0], "1.0"), &ens)
	if ens.Created || ens.ReleaseChanged || ens.Changed {
		t.Fatalf("second ensure was not a no-op: %+v", ens)
	}
	s.call("start", protocol.OpStart, protocol.ServiceRef{Service: "api"}, nil)
	var sw switchResult
	for i := 1; i < 4; i++ {
		s.call("sw"+string(rune('0'+i)), protocol.OpSwitchRelease, protocol.SwitchArgs{Service: "api", Artifact: arts[i], Version: "1." + string(rune('0'+i))}, &sw)
		if !sw.Changed || !sw.Restarted || sw.From != arts[i-1] {
			t.Fatalf("switch %d: %+v", i, sw)
		}
	}
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	api := f.Services[0]
	if api.Current.Artifact != arts[3] || api.Previous.Artifact != arts[2] || len(api.Releases) != 3 {
		t.Fatalf("releases: %+v", api.Releases)
	}
	if api.BinarySHA256 != arts[3] || api.Status.State != StateRunning {
		t.Fatalf("facts: sha %s state %+v", api.BinarySHA256, api.Status)
	}
	if slices.Contains(f.Artifacts, arts[0]) {
		t.Fatalf("artifact of the dropped release was kept: %v", f.Artifacts)
	}
	s.call("rb", protocol.OpRollback, protocol.ServiceRef{Service: "api"}, &sw)
	if sw.To != arts[2] || !sw.Restarted {
		t.Fatalf("rollback: %+v", sw)
	}
	s.call("reload", protocol.OpReload, protocol.ServiceRef{Service: "api"}, nil)
	if fake.load()["api"].Reloads != 1 {
		t.Fatal("reload did not send PARAMCHANGE")
	}
	s.call("stop", protocol.OpStop, protocol.ServiceRef{Service: "api"}, nil)
	var stop2 map[string]any
	s.call("stop2", protocol.OpStop, protocol.ServiceRef{Service: "api"}, &stop2)
	if stop2["changed"] != false {
		t.Fatalf("second stop: %v", stop2)
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
	var arts []string
	for i := 0; i < 3; i++ {
		arts = append(arts, s.stage("s"+string(rune('0'+i)), "x.exe", []byte{byte(i)}, 10).SHA256)
	}
	s.call("e", protocol.OpEnsureService, nativeSpec("x", arts[0], ""), nil)
	s.call("a", protocol.OpSwitchRelease, protocol.SwitchArgs{Service: "x", Artifact: arts[1]}, nil)
	s.call("b", protocol.OpSwitchRelease, protocol.SwitchArgs{Service: "x", Artifact: arts[2]}, nil)
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	if n := len(f.Services[0].Releases); n != 2 || f.Host.KeepReleases != 2 {
		t.Fatalf("kept %d releases, keep_releases %d", n, f.Host.KeepReleases)
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
	var ens ensureResult
	progress := s.call("e", protocol.OpEnsureService, nativeSpec("api", art, "1"), &ens)
	if len(ens.Recorded) != 2 || len(progress) < 2 {
		t.Fatalf("ensure did not report the gaps: %+v, progress %+v", ens, progress)
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

func TestPasswordsNeverReachEventsOrFiles(t *testing.T) {
	const secret = "Tr0ub4dor&3-never-log-me"
	root := testfs.TempDir(t)
	a, _ := newTestAgent(t, root)
	var out bytes.Buffer
	var in bytes.Buffer
	art := digest([]byte("bin"))
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\svc-api`, Password: secret}
	reqs := []protocol.Request{
		{ID: "s", Op: protocol.OpStage, Args: protocol.MustArgs(protocol.StageArgs{SHA256: art, Size: 3, Name: "api.exe"})},
		{ID: "e", Op: protocol.OpEnsureService, Args: protocol.MustArgs(spec)},
		{ID: "ap", Op: protocol.OpApply, Args: protocol.MustArgs(protocol.ApplyArgs{Steps: []protocol.Request{
			{Op: protocol.OpEnsureService, Args: protocol.MustArgs(spec)},
			{Op: protocol.OpStart, Args: protocol.MustArgs(protocol.ServiceRef{Service: "nope"})},
		}, Rollback: []protocol.Request{{Op: protocol.OpEnsureService, Args: protocol.MustArgs(spec)}}})},
		{ID: "f", Op: protocol.OpFacts},
		// A malformed request echoing the password must not echo it back.
		{ID: "bad", Op: protocol.OpEnsureService, Args: json.RawMessage(`{"name":"api","account":{"password":"` + secret + `"},"bogus":1}`)},
	}
	for _, r := range reqs {
		protocol.EncodeRequest(&in, r)
		if r.Op == protocol.OpStage {
			in.Write(framed([]byte("bin"), 0, true))
		}
	}
	if err := a.Serve(t.Context(), &in, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"id":"f","event":"result"`) {
		t.Fatalf("session did not complete: %s", out.String())
	}
	if strings.Contains(out.String(), secret) {
		t.Fatal("password reached an event")
	}
	for _, f := range listFiles(t, root) {
		b, _ := os.ReadFile(filepath.Join(root, f))
		if f != "fake-scm.json" && bytes.Contains(b, []byte(secret)) {
			t.Fatalf("password reached %s", f)
		}
	}
}

func TestSecondAgentSeesLockAndHolder(t *testing.T) {
	root := testfs.TempDir(t)
	first, _ := newTestAgent(t, root)
	s1 := startSession(t, first)
	var holder protocol.LockHolder
	s1.call("l", protocol.OpLock, protocol.LockArgs{Operator: "alice@laptop"}, &holder)

	second, _ := newTestAgent(t, root)
	s2 := startSession(t, second)
	ev := s2.callErr("w", protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: "a.txt", Content: []byte("x")}, protocol.CodeLocked)
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
	if _, err := os.Stat(filepath.Join(root, "services")); err == nil {
		t.Fatal("locked-out agent wrote a file")
	}
	s1.close() // releases the lock
	s2.call("w2", protocol.OpWriteFile, protocol.WriteFileArgs{Service: "api", Name: "a.txt", Content: []byte("x")}, nil)
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
	ev := s2.callErr("x", protocol.OpApply, protocol.ApplyArgs{Steps: []protocol.Request{writeStep("a.txt", "A")}}, protocol.CodeLocked)
	if h := ev.Error.Holder; h == nil || h.PID != cmd.Process.Pid || h.Operator != "ci-pipeline-42" {
		t.Fatalf("holder %+v", ev.Error.Holder)
	}
	s2.close()
	if _, err := os.Stat(filepath.Join(root, "journal.json")); err == nil {
		t.Fatal("locked-out apply wrote a journal")
	}
}
