package agent

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/winsec"
	"github.com/gsd-deploy/gsd/agent/winsec/winsectest"
)

// callsOf lists the fake host's calls that start with prefix.
func callsOf(f *winsectest.Fake, prefix string) []string {
	var out []string
	for _, c := range f.Calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// A local user, a domain user and a group managed service account each
// get "Log on as a service" exactly once however many services run as
// them, keep it while one does, and lose it with the last; without it the
// service manager would refuse to start them (1069).
func TestLogonRightGivenOnceAndTakenWithLastService(t *testing.T) {
	for _, account := range []string{`.\svc-orders`, `CORP\svc-orders`, `CORP\orders$`} {
		t.Run(account, func(t *testing.T) {
			root := testfs.TempDir(t)
			a, fake := newTestAgent(t, root)
			sid := "S-1-5-21-5-5-5-1107"
			fake.sec.AddAccount(account, winsectest.Account{SID: sid, Managed: strings.HasSuffix(account, "$")})
			s := startSession(t, a)
			art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
			for _, name := range []string{"api", "worker"} {
				spec := nativeSpec(name, art, "1")
				spec.Account = protocol.Account{Name: account}
				if !strings.HasSuffix(account, "$") {
					spec.Account.Password = "pw"
				}
				s.deploy("d-"+name, spec, protocol.EffectStart)
				if f := serviceFacts(t, s, "f-"+name, name); f.LogonRight != protocol.LogonRightGranted {
					t.Fatalf("%s: logon right %q", name, f.LogonRight)
				}
			}
			if adds := callsOf(fake.sec, "add "); len(adds) != 1 || !fake.sec.HasRight(sid, winsec.ServiceLogonRight) {
				t.Fatalf("adds %v", adds)
			}
			s.call("rm1", protocol.OpDeleteService, protocol.ServiceRef{Service: "api"}, nil)
			if !fake.sec.HasRight(sid, winsec.ServiceLogonRight) {
				t.Fatal("the right went while worker still runs as the account")
			}
			s.call("rm2", protocol.OpDeleteService, protocol.ServiceRef{Service: "worker"}, nil)
			if fake.sec.HasRight(sid, winsec.ServiceLogonRight) || len(callsOf(fake.sec, "remove ")) != 1 {
				t.Fatalf("after the last service: calls %v", fake.sec.Calls)
			}
			s.close()
		})
	}
}

// A right the account held before gsd is never taken away, and facts say
// whose it is; changing a service to another account takes away only
// what gsd gave the first.
func TestLogonRightHeldBeforeIsKept(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	const held, ours = "S-1-5-21-5-5-5-2001", "S-1-5-21-5-5-5-2002"
	fake.sec.AddAccount(`CORP\held`, winsectest.Account{SID: held})
	fake.sec.AddAccount(`CORP\ours`, winsectest.Account{SID: ours})
	fake.sec.GiveRight(held, winsec.ServiceLogonRight)
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\ours`, Password: "pw"}
	s.deploy("d1", spec, protocol.EffectStart)
	spec.Account = protocol.Account{Name: `CORP\held`, Password: "pw"}
	s.deploy("d2", spec, protocol.EffectRestart)
	if f := serviceFacts(t, s, "f", "api"); f.LogonRight != protocol.LogonRightHeld {
		t.Fatalf("logon right %q", f.LogonRight)
	}
	if fake.sec.HasRight(ours, winsec.ServiceLogonRight) {
		t.Fatal("the right gsd gave the old account stayed")
	}
	s.call("rm", protocol.OpDeleteService, protocol.ServiceRef{Service: "api"}, nil)
	if !fake.sec.HasRight(held, winsec.ServiceLogonRight) {
		t.Fatal("gsd took away a right it did not give")
	}
	if got := strings.Join(fake.sec.Calls, ";"); strings.Contains(got, "remove "+held) {
		t.Fatalf("calls %s", got)
	}
	s.close()
}

// A start refused with ERROR_SERVICE_LOGON_FAILED (here a wrong password)
// is explained: the host, the account, and what to check.
func TestLogonFailureIsExplained(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	fake.sec.AddAccount(`CORP\svc`, winsectest.Account{SID: "S-1-5-21-5-5-5-3001", Password: "right"})
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\svc`, Password: "wrong"}
	rel := s.stageRelease("st1", spec)
	ev := s.callErr("d1", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: rel, Effect: protocol.EffectStart}, protocol.CodeActivationFailed)
	for _, want := range []string{hostname(), `CORP\svc`, "1069", "password"} {
		if !strings.Contains(ev.Error.Message, want) {
			t.Errorf("the error does not say %q: %s", want, ev.Error.Message)
		}
	}
	// An account Windows does not know is refused, saying what to check.
	spec.Account = protocol.Account{Name: `CORP\nobody`, Password: "x"}
	fake.sec.AnyUser = false
	rel = s.stageRelease("st2", spec)
	ev = s.callErr("d2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: rel, Effect: protocol.EffectStart}, protocol.CodeActivationFailed)
	if !strings.Contains(ev.Error.Message, "does not know the account") || !strings.Contains(ev.Error.Message, "account.name") {
		t.Errorf("unknown account: %s", ev.Error.Message)
	}
	s.close()
}

// Failure actions that reboot are set with the shutdown privilege enabled
// (Windows refuses them otherwise) and with a reboot message; a run
// action reaches the service manager with its command.
func TestRecoveryPrivilegeMessageAndCommand(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	if _, err := fake.Install("probe", InstallConfig{}); err != nil {
		t.Fatal(err)
	}
	reboot := protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "restart", DelayMS: 1000}, {Type: "reboot", DelayMS: 5000}}, ResetAfterMS: 86400000}
	if _, err := fake.SetRecovery("probe", reboot); !errors.Is(err, winsectest.ErrAccessDenied) {
		t.Fatalf("the fake let a reboot action through without the privilege: %v", err)
	}
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Recovery = &reboot
	s.deploy("d1", spec, protocol.EffectNone)
	got := fake.load()["api"].Recovery
	if got == nil || len(got.Actions) != 2 || got.Actions[1].Type != "reboot" || !strings.Contains(got.RebootMessage, "api") {
		t.Fatalf("recovery on the host: %+v", got)
	}
	if !slices.Contains(fake.sec.Calls, "enable "+winsec.ShutdownPrivilege) || fake.sec.Enabled(winsec.ShutdownPrivilege) {
		t.Fatalf("privilege calls %v, still enabled: %v", fake.sec.Calls, fake.sec.Enabled(winsec.ShutdownPrivilege))
	}
	spec.Recovery = &protocol.Recovery{Actions: []protocol.RecoveryAction{{Type: "run", DelayMS: 10000}}, Command: `C:\tools\alert.exe -service api`}
	s.deploy("d2", spec, protocol.EffectNone)
	if got := fake.load()["api"].Recovery; got == nil || got.Command != spec.Recovery.Command || got.RebootMessage != "" {
		t.Fatalf("run action on the host: %+v", got)
	}
	if n := len(callsOf(fake.sec, "enable ")); n != 1 {
		t.Fatalf("the privilege was enabled %d times; a run action needs none", n)
	}
	s.close()
}

// A service runs as its own virtual account unless told otherwise, and
// that account may use exactly what it needs: read and run its binary's
// folder, read its files, modify its log and working folders.
func TestVirtualAccountGetsItsFolders(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	// D: is a folder of the test's, on Windows (Wine) too.
	a.opts.HostPath = func(p string) string {
		return filepath.Join(root, "drive_"+strings.ToLower(p[:1]), filepath.FromSlash(strings.ReplaceAll(p[3:], `\`, "/")))
	}
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Mode = protocol.ModeWrapped
	spec.Wrapper = &protocol.WrapperSpec{LogDir: `D:\logs\api`}
	spec.Files = []protocol.FileSpec{{Name: "app.yaml", Content: []byte("a: 1")}, {Name: "shared.yaml", Path: `D:\conf\shared.yaml`, Content: []byte("b: 2")}}
	s.deploy("d1", spec, protocol.EffectStart)
	sid := winsec.ServiceSID("api")
	l := a.layout
	for dir, access := range map[string]winsec.Access{
		filepath.Join(l.ArtifactDir(), art): winsec.ReadExecute,
		l.ServiceDir("api"):                 winsec.Read,
		a.hostPath(`D:\logs\api`):           winsec.Modify,
		l.WorkDir("api"):                    winsec.Modify,
		a.hostPath(`D:\conf`):               winsec.Read,
	} {
		f, err := fake.sec.Folder(dir)
		if err != nil || !winsec.Grants(f, sid, access) {
			t.Errorf("%s: %v does not grant NT SERVICE\\api %s (%v)", dir, f, access, err)
		}
	}
	for _, dir := range []string{l.Root, l.ReleaseDir(), l.ArtifactDir()} {
		if f, _ := fake.sec.Folder(dir); winsec.Grants(f, sid, winsec.Read) {
			t.Errorf("%s grants the service's account: %+v", dir, f)
		}
	}
	wc, err := os.ReadFile(l.WrapperConfig("api"))
	if err != nil || !strings.Contains(string(wc), filepath.Base(l.WorkDir("api"))) {
		t.Fatalf("wrapper config %s (%v) does not run the program in its working folder", wc, err)
	}
	s.close()
}

// A same-named service Windows has marked for deletion is waited for; one
// still held past the bound is reported with the program that holds it.
func TestMarkedForDeletionIsWaitedForThenExplained(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	a.opts.MarkedForDeleteWait = 50 * time.Millisecond
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	s.deploy("d1", spec, protocol.EffectStart)
	fake.holder = "mmc.exe (pid 4711)"
	progress := s.call("rm", protocol.OpDeleteService, protocol.ServiceRef{Service: "api"}, nil)
	if len(progress) == 0 || !strings.Contains(progress[len(progress)-1].Message, "mmc.exe") {
		t.Fatalf("delete did not say the service is only marked: %+v", progress)
	}
	spec.Version = "2"
	rel := s.stageRelease("st2", spec)
	ev := s.callErr("d2", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: rel, Effect: protocol.EffectStart}, protocol.CodeActivationFailed)
	for _, want := range []string{"1072", "mmc.exe (pid 4711)", hostname()} {
		if !strings.Contains(ev.Error.Message, want) {
			t.Errorf("the error does not say %q: %s", want, ev.Error.Message)
		}
	}
	// Once the holder lets go, the same activation goes through.
	fake.releaseHolder()
	s.activate("d3", "api", rel, protocol.EffectStart)
	if st := fake.load()["api"]; st == nil || st.Marked || st.State != StateRunning {
		t.Fatalf("after the holder let go: %+v", st)
	}
	s.close()
}

// A group managed service account the host cannot use is refused when its
// release is staged, before anything stops, and facts say so when asked.
func TestUnusableManagedAccountIsRefusedAtStage(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	const why = "this computer may not retrieve the account's password"
	fake.sec.AddAccount(`CORP\web$`, winsectest.Account{SID: "S-1-5-21-5-5-5-4001", Managed: true, Unusable: why})
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("bin"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	spec.Account = protocol.Account{Name: `CORP\web$`}
	ev := s.callErr("st1", protocol.OpStageRelease, stageArgs(spec), protocol.CodeBadRequest)
	if !strings.Contains(ev.Error.Message, why) || !strings.Contains(ev.Error.Message, hostname()) {
		t.Fatalf("stage error: %s", ev.Error.Message)
	}
	var f protocol.Facts
	s.call("f", protocol.OpFacts, protocol.FactsArgs{Accounts: []string{`CORP\web$`}}, &f)
	if len(f.Accounts) != 1 || f.Accounts[0].Problem != why {
		t.Fatalf("facts accounts %+v", f.Accounts)
	}
	fake.sec.NoManagedCheck = true
	var f2 protocol.Facts
	s.call("f2", protocol.OpFacts, protocol.FactsArgs{Accounts: []string{`CORP\web$`}}, &f2)
	if len(f2.Accounts) != 1 || f2.Accounts[0].Problem != "" || !strings.Contains(f2.Accounts[0].Unchecked, "not supported") {
		t.Fatalf("a host that cannot tell: %+v", f2.Accounts)
	}
	s.close()
}

// A staged artifact whose bytes changed on disk (same name, size and
// time) is not activated: it is hashed whole first, removed, and the
// error says so.
func TestChangedArtifactIsRefusedAtActivation(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	s := startSession(t, a)
	art := s.stage("st", "api.exe", []byte("good-bytes"), 10).SHA256
	spec := nativeSpec("api", art, "1")
	rel := s.stageRelease("st1", spec)
	path := a.store.Path(art, "api.exe")
	fi, _ := os.Stat(path)
	if err := os.WriteFile(path, []byte("evil-bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	ev := s.callErr("d1", protocol.OpActivate, protocol.ActivateArgs{Kind: protocol.KindService, Name: "api", Release: rel, Effect: protocol.EffectStart}, protocol.CodeHashMismatch)
	if !strings.Contains(ev.Error.Message, "no longer holds the bytes staged") {
		t.Fatalf("error: %s", ev.Error.Message)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the changed artifact is still there: %v", err)
	}
	if _, err := fake.Query("api"); err != nil || fake.load()["api"] != nil {
		t.Fatalf("the service was touched: %v", fake.load()["api"])
	}
	var f protocol.Facts
	if s.call("f", protocol.OpFacts, nil, &f); f.Journal != nil {
		t.Fatalf("a journal was left: %+v", f.Journal)
	}
	s.close()
}

// A root another user created and shut administrators out of is taken
// back before the agent trusts anything in it, and facts say so.
func TestPlantedRootIsTakenBackAndReported(t *testing.T) {
	root := testfs.TempDir(t)
	a, fake := newTestAgent(t, root)
	const mallory = "S-1-5-21-1-2-3-1001"
	fake.sec.Plant(root, winsec.Folder{Owner: mallory, Protected: true, Entries: []winsec.Entry{{SID: mallory, Access: winsec.FullControl, Inherit: true}}})
	s := startSession(t, a)
	var f protocol.Facts
	s.call("f", protocol.OpFacts, nil, &f)
	if len(f.Host.Repairs) != 1 || !strings.Contains(f.Host.Repairs[0], mallory) {
		t.Fatalf("repairs %q", f.Host.Repairs)
	}
	if got, _ := fake.sec.Folder(root); got.Owner != winsec.SIDAdministrators || !winsec.Grants(got, winsec.SIDAdministrators, winsec.FullControl) || winsec.Grants(got, mallory, winsec.Read) {
		t.Fatalf("root after facts: %+v", got)
	}
	s.close()
}

// A root whose access list the host accepts and does not keep is a gap
// on Wine, which keeps none, and reported in facts; on Windows proper the
// protection is not in place, and the agent refuses to work in the root.
func TestRootAccessNotKeptIsRefusedOnWindows(t *testing.T) {
	defer func(was func() bool) { hostForgetsSecurity = was }(hostForgetsSecurity)
	for _, onWine := range []bool{false, true} {
		a, fake := newTestAgent(t, testfs.TempDir(t))
		fake.sec.Forgets = true
		hostForgetsSecurity = func() bool { return onWine }
		err := a.secureRoot()
		var nk *winsec.NotKeptError
		switch {
		case onWine && (err != nil || a.rootGap == ""):
			t.Errorf("on Wine: err %v, gap %q; want a gap", err, a.rootGap)
		case !onWine && !errors.As(err, &nk):
			t.Errorf("on Windows: err %v; want the access list not kept", err)
		}
	}
}

// The service manager's refusals are explained with the host, the
// service, the code and the fix.
func TestSCMErrorsAreExplained(t *testing.T) {
	native := protocol.ServiceSpec{Name: "api", Mode: protocol.ModeNative, Account: protocol.Account{Name: `CORP\svc`}}
	gmsa := protocol.ServiceSpec{Name: "api", Mode: protocol.ModeNative, Account: protocol.Account{Name: `CORP\web$`}}
	for _, tc := range []struct {
		spec protocol.ServiceSpec
		err  error
		want []string
	}{
		{native, errServiceLogonFailed, []string{"1069", `CORP\svc`, "password", "Log on as a service"}},
		{gmsa, errServiceLogonFailed, []string{"1069", "Test-ADServiceAccount web", "PrincipalsAllowedToRetrieveManagedPassword"}},
		{native, errInvalidServiceAccount, []string{"1057", "account.name"}},
		{native, errServiceRequestTimeout, []string{"1053", `mode = "wrapped"`}},
	} {
		got := explainSCM("api", tc.spec, tc.err).Error()
		if !errors.Is(explainSCM("api", tc.spec, tc.err), tc.err) {
			t.Errorf("%v: the code is lost", tc.err)
		}
		for _, w := range append(tc.want, hostname(), "service api") {
			if !strings.Contains(got, w) {
				t.Errorf("%v: %q does not say %q", tc.err, got, w)
			}
		}
	}
}
