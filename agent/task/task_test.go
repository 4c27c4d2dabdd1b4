package task

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/winsec"
	"github.com/gsd-deploy/gsd/agent/winsec/winsectest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// childEnv makes the test binary act as a task's program.
const childEnv = "GSD_TASK_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "report" {
		wd, _ := os.Getwd()
		fmt.Printf("report %s in %s with args %q\n", os.Getenv("REPORT_MODE"), filepath.Base(wd), os.Args[1:])
		os.Exit(4)
	}
	os.Exit(m.Run())
}

func nightly() protocol.TaskSpec {
	return protocol.TaskSpec{
		Name:        "nightly",
		Description: "Writes the nightly report",
		Process: protocol.Process{Artifact: strings.Repeat("a", 64), Version: "1.0.0", Args: []string{"-out", `C:\reports`},
			Account: protocol.Account{Name: `CORP\reports`, Password: "hunter2"}, Env: map[string]string{"REPORT_MODE": "nightly"}},
		Triggers: []protocol.Trigger{
			{Kind: protocol.TriggerDaily, At: "02:00"},
			{Kind: protocol.TriggerWeekly, At: "03:30", Days: []string{"monday", "friday"}},
			{Kind: protocol.TriggerEvery, EveryMS: 15 * 60000},
			{Kind: protocol.TriggerStartup},
			{Kind: protocol.TriggerLogon},
		},
		TimeLimitMS: 90 * 60000,
		IfRunning:   protocol.IfRunningQueue,
		Retry:       &protocol.TaskRetry{Count: 3, IntervalMS: 5 * 60000},
	}
}

// TestDefinitionGolden pins the task XML a release turns into, and that
// it is the task schema's (every element gsd writes reads back).
func TestDefinitionGolden(t *testing.T) {
	got, err := Definition(nightly(), `C:\ProgramData\gsd\bin\abc\gsd-agent.exe`, []string{"task-host", "-root", `C:\Program Data\gsd`, "-task", "nightly"}, `C:\ProgramData\gsd\tasks\nightly`, true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "nightly.xml")
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil || got != string(want) {
		t.Errorf("definition differs from %s (go test -update):\n%s", path, got)
	}
	if strings.Contains(got, "hunter2") || strings.Contains(got, "REPORT_MODE") {
		t.Error("the definition holds the password or the environment")
	}
	var back definition
	if err := xml.Unmarshal([]byte(got), &back); err != nil || back.Actions.Exec.Arguments != `task-host -root "C:\Program Data\gsd" -task nightly` ||
		back.Principals.Principal.UserID != `CORP\reports` || back.Settings.RestartOnFailure.Interval != "PT5M" || back.Settings.ExecutionTimeLimit != "PT1H30M" {
		t.Errorf("read back: %v %+v", err, back)
	}
	system := nightly()
	system.Account, system.TimeLimitMS = protocol.Account{Name: "LocalSystem"}, 0
	got, _ = Definition(system, "a.exe", nil, `C:\x`, false)
	if !strings.Contains(got, "<UserId>S-1-5-18</UserId>") || !strings.Contains(got, "<LogonType>ServiceAccount</LogonType>") ||
		!strings.Contains(got, "<ExecutionTimeLimit>PT0S</ExecutionTimeLimit>") || !strings.Contains(got, "<Enabled>false</Enabled>\n    <Hidden>") {
		t.Errorf("LocalSystem, no limit, disabled:\n%s", got)
	}
}

func TestQuoteArg(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: `plain`, ``: `""`, `two words`: `"two words"`, `C:\dir\`: `C:\dir\`, `C:\my dir\`: `"C:\my dir\\"`,
		`say "hi"`: `"say \"hi\""`, `a\"b`: `"a\\\"b"`,
	} {
		if got := quoteArg(in); got != want {
			t.Errorf("quoteArg(%q) = %s, want %s", in, got, want)
		}
	}
}

// fakeScheduler keeps tasks as the Task Scheduler does: it refuses a
// definition that is not task XML (SCHED_E_MALFORMEDXML), writes the
// definition back in its own form, and reports runs only once there
// were some.
type fakeScheduler struct {
	tasks map[string]*Observed
	users map[string]principal
}

var errMalformed = errors.New("(XML) the task XML is malformed (0x8004131A)")

func (f *fakeScheduler) Register(name, def string, p principal) error {
	var d definition
	if err := xml.Unmarshal([]byte(def), &d); err != nil || d.Actions.Exec.Command == "" {
		return errMalformed
	}
	if p.LogonType == logonPassword && !strings.HasSuffix(p.UserID, "$") && p.Password == "" {
		return errors.New("the user name or password is incorrect (0x8007052E)")
	}
	state := "ready"
	if !d.Settings.Enabled {
		state = "disabled"
	}
	// The scheduler writes its own form back: its declaration and
	// defaults.
	f.tasks[name] = &Observed{XML: "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n" + def, State: state}
	f.users[name] = p
	return nil
}

func (f *fakeScheduler) Get(name string) (Observed, bool, error) {
	o, ok := f.tasks[name]
	if !ok {
		return Observed{}, false, nil
	}
	return *o, true, nil
}

func (f *fakeScheduler) Delete(name string) error {
	delete(f.tasks, name)
	return nil
}

// newHandler is a task handler on a fake Task Scheduler and a fake host
// security that knows the account nightly runs as.
func newHandler(t *testing.T) (*Handler, *fakeScheduler, *winsectest.Fake, string) {
	root := testfs.TempDir(t)
	sched := &fakeScheduler{tasks: map[string]*Observed{}, users: map[string]principal{}}
	sec := winsectest.New()
	sec.AddAccount(`CORP\reports`, winsectest.Account{SID: reportsSID, Password: "hunter2"})
	exe, _ := os.Executable()
	h := &Handler{Scheduler: sched, Host: agent.Host{Layout: state.Layout{Root: root}, Self: `C:\gsd\gsd-agent.exe`,
		Grant: func(dir, account string, access winsec.Access) (string, error) {
			sid, err := sec.SID(account)
			if err != nil {
				return "", err
			}
			return "", winsec.Grant(sec, dir, sid, access)
		},
		CheckAccount: func(owner, account string) error {
			if account == `CORP\gone$` {
				return fmt.Errorf("%s: host web1 cannot run it as %s: the domain has no such managed service account", owner, account)
			}
			return nil
		},
		Artifact: func(sha string) (string, error) {
			if sha != strings.Repeat("a", 64) {
				return "", errors.New("not staged")
			}
			return exe, nil
		},
		HostPath: func(p string) string {
			return filepath.Join(root, "drive_c", filepath.FromSlash(strings.ReplaceAll(p[3:], `\`, "/")))
		}}}
	return h, sched, sec, root
}

const reportsSID = "S-1-5-21-1-2-3-1104"

// stage checks a release as the agent does at stage_release: the spec
// without secrets, which travel apart.
func stage(t *testing.T, h *Handler, s protocol.TaskSpec) (json.RawMessage, map[string]string) {
	t.Helper()
	rec, err := h.Check(s.Name, protocol.MustArgs(s.WithoutSecrets()), s.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Spec), "hunter2") || strings.Contains(string(rec.Spec), `"nightly"}`) {
		t.Fatalf("the stored spec holds a secret: %s", rec.Spec)
	}
	return rec.Spec, rec.Secrets
}

func TestTaskLifecycle(t *testing.T) {
	h, sched, sec, root := newHandler(t)
	spec := nightly()
	raw, secrets := stage(t, h, spec)
	rec, err := h.Check(spec.Name, raw, secrets)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := h.Apply("nightly", rec, protocol.EffectNone, nil, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	r := &state.Resource{Spec: rec.Spec, Recorded: got}
	if u := sched.users["nightly"]; u.UserID != `CORP\reports` || u.Password != "hunter2" || u.LogonType != logonPassword {
		t.Errorf("registered as %+v", u)
	}
	// The action runs the agent as the task host; the program's
	// environment is in task.json, never in the definition.
	def := sched.tasks["nightly"].XML
	if !strings.Contains(def, `<Command>C:\gsd\gsd-agent.exe</Command>`) || !strings.Contains(def, "-task nightly</Arguments>") || strings.Contains(def, "REPORT_MODE") {
		t.Errorf("definition:\n%s", def)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "tasks", "nightly", "task.json")); !strings.Contains(string(b), `"REPORT_MODE": "nightly"`) {
		t.Errorf("task.json: %s", b)
	}
	// Its account runs its program, reads its folder (task.json) and writes
	// its logs and its working folder, which the root keeps from every
	// other account.
	program, _ := h.Host.Artifact(spec.Artifact)
	for dir, access := range map[string]winsec.Access{filepath.Dir(program): winsec.ReadExecute, filepath.Join(root, "tasks", "nightly"): winsec.Read, filepath.Join(root, "tasks", "nightly", "logs"): winsec.Modify, filepath.Join(root, "tasks", "nightly", "work"): winsec.Modify} {
		if f, _ := sec.Folder(dir); !winsec.Grants(f, reportsSID, access) {
			t.Errorf("%s: %s", dir, sec.Entries())
		}
	}
	f := h.Observe("nightly", r)
	if !f.Installed || len(f.Drift) != 0 || f.Status.State != "ready" || f.Status.Details[0].Value != "never" {
		t.Fatalf("observe: %+v %+v", f, f.Status)
	}

	// Changed by hand (disabled in the Task Scheduler's console): named.
	sched.tasks["nightly"].XML += "<!-- edited -->"
	if f := h.Observe("nightly", r); len(f.Drift) != 1 || f.Drift[0] != "definition" {
		t.Errorf("drift: %+v", f.Drift)
	}

	// The scheduler reports runs; where it cannot, the task host's own
	// record says how the last one ended.
	last, code := time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC), uint32(0)
	sched.tasks["nightly"].LastRun, sched.tasks["nightly"].LastResult, sched.tasks["nightly"].NextRun = last, &code, last.Add(24*time.Hour)
	f = h.Observe("nightly", r)
	if d := f.Status.Details; len(d) != 2 || !d[0].Time.Equal(last) || d[0].Value != "exit code 0" || !d[1].Time.Equal(last.Add(24*time.Hour)) {
		t.Errorf("runs: %+v", d)
	}
	sched.tasks["nightly"].LastRun, sched.tasks["nightly"].LastResult, sched.tasks["nightly"].NextRun = time.Time{}, nil, time.Time{}
	sched.tasks["nightly"].Unreadable = map[string]string{"next_run": "not implemented"}
	os.WriteFile(filepath.Join(root, "tasks", "nightly", "logs", "task-status.json"), []byte(`{"starts":1,"last_exit_code":4,"last_exit":"2024-05-01T02:01:00Z"}`), 0o644)
	f = h.Observe("nightly", r)
	if d := f.Status.Details; d[0].Value != "exit code 4" || f.Sources["last_run"] != "task-host" || d[1].Value != "not reported by this host" {
		t.Errorf("runs from the task host: %+v %+v", d, f.Sources)
	}

	// The rollback of a new task leaves it disabled; removal removes it
	// and its folder.
	h.Apply("nightly", rec, protocol.EffectStop, r, func(string) {})
	if sched.tasks["nightly"].State != "disabled" {
		t.Errorf("state after EffectStop: %s", sched.tasks["nightly"].State)
	}
	if err := h.Remove("nightly", r, func(string) {}); err != nil {
		t.Fatal(err)
	}
	if _, ok := sched.tasks["nightly"]; ok {
		t.Error("the task is still registered")
	}
	if _, err := os.Stat(filepath.Join(root, "tasks", "nightly")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the task's folder is left: %v", err)
	}
	if f := h.Observe("nightly", r); f.Installed {
		t.Error("a removed task is installed")
	}
}

func TestTaskCheckRefuses(t *testing.T) {
	h, _, _, _ := newHandler(t)
	for what, change := range map[string]func(*protocol.TaskSpec){
		"name":           func(s *protocol.TaskSpec) { s.Name = "other" },
		"artifact":       func(s *protocol.TaskSpec) { s.Artifact = strings.Repeat("b", 64) },
		"no triggers":    func(s *protocol.TaskSpec) { s.Triggers = nil },
		"bad time":       func(s *protocol.TaskSpec) { s.Triggers[0].At = "24:00" },
		"days on daily":  func(s *protocol.TaskSpec) { s.Triggers[0].Days = []string{"monday"} },
		"bad day":        func(s *protocol.TaskSpec) { s.Triggers[1].Days = []string{"funday"} },
		"short interval": func(s *protocol.TaskSpec) { s.Triggers[2].EveryMS = 30000 },
		"trigger kind":   func(s *protocol.TaskSpec) { s.Triggers[3].Kind = "idle" },
		"if_running":     func(s *protocol.TaskSpec) { s.IfRunning = "sometimes" },
		"retry":          func(s *protocol.TaskSpec) { s.Retry.Count = 0 },
		"dir":            func(s *protocol.TaskSpec) { s.Dir = `..\up` },
		"env":            func(s *protocol.TaskSpec) { s.Env = map[string]string{"A=B": "c"} },
	} {
		s := nightly()
		s.Triggers = append([]protocol.Trigger(nil), s.Triggers...)
		s.Retry = &protocol.TaskRetry{Count: 3, IntervalMS: 300000}
		change(&s)
		if _, err := h.Check("nightly", protocol.MustArgs(s.WithoutSecrets()), s.Secrets()); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	s := nightly()
	if _, err := h.Check("nightly", protocol.MustArgs(s.WithoutSecrets()), map[string]string{}); err == nil {
		t.Error("missing secrets accepted")
	}
	// A group managed service account the host cannot use is refused at
	// staging, before anything changes, as for a service.
	s.Account = protocol.Account{Name: `CORP\gone$`}
	if _, err := h.Check("nightly", protocol.MustArgs(s.WithoutSecrets()), s.Secrets()); err == nil || !strings.Contains(err.Error(), `task nightly: host web1 cannot run it as CORP\gone$`) {
		t.Errorf("an unusable gMSA: %v", err)
	}
}

// TestRunHost runs a task's program as the Task Scheduler would through
// gsd-agent task-host: its environment, working folder and arguments,
// its output in the task's logs, its exit code as the run's result.
func TestRunHost(t *testing.T) {
	h, _, _, root := newHandler(t)
	spec := nightly()
	spec.Args = []string{"-test.run=^$", "--", "one"}
	raw, secrets := stage(t, h, spec)
	rec, _ := h.Check("nightly", raw, secrets)
	if _, _, err := h.Apply("nightly", rec, protocol.EffectNone, nil, func(string) {}); err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, "report")
	var said []string
	code, err := RunHost(context.Background(), root, "nightly", func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) })
	if err != nil || code != 4 {
		t.Fatalf("exit code %d, %v; %v", code, err, said)
	}
	out, _ := os.ReadFile(filepath.Join(root, "tasks", "nightly", "logs", "stdout.log"))
	if !strings.Contains(string(out), `report nightly in work with args ["-test.run=^$" "--" "one"]`) {
		t.Errorf("the program's output: %q", out)
	}
	if _, err := RunHost(context.Background(), root, "..", func(string, ...any) {}); err == nil {
		t.Error("a task named .. ran")
	}
}
