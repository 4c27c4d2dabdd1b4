package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/winsec"
)

// Scheduler is the host's Task Scheduler, in gsd's folder (Folder).
type Scheduler interface {
	// Register creates the task, or replaces the one of that name, from
	// its XML definition, to run as p.
	Register(name, xml string, p principal) error
	// Get reports the task; ok is false when there is none.
	Get(name string) (o Observed, ok bool, err error)
	// Delete removes the task; one that is not there is no error.
	Delete(name string) error
}

// Observed is a task as the Task Scheduler reports it.
type Observed struct {
	// XML is its definition as the Task Scheduler writes it back.
	XML string
	// State is "ready", "running", "queued", "disabled" or "unknown".
	State string
	// LastRun is when it last ran, zero when never (or not reported);
	// LastResult is what that run returned (its exit code).
	LastRun    time.Time
	LastResult *uint32
	NextRun    time.Time
	// Unreadable maps what the host could not report ("last_result",
	// "next_run") to why.
	Unreadable map[string]string
}

// ErrUnavailable is wrapped by a Scheduler on a host without a Task
// Scheduler gsd can use.
var ErrUnavailable = errors.New("this host has no Task Scheduler gsd can use")

func init() {
	agent.RegisterKind(protocol.KindTask, func(h agent.Host) agent.Handler { return &Handler{Host: h, Scheduler: hostScheduler()} })
}

// Handler applies scheduled tasks.
type Handler struct {
	Host      agent.Host
	Scheduler Scheduler
}

// recorded is what the agent keeps of a task: a hash of its definition
// as the Task Scheduler wrote it back when gsd registered it, against
// which later reads tell whether it was changed by hand.
type recorded struct {
	XMLSHA256 string `json:"xml_sha256"`
}

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

var weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// Check validates a task's whole release before it is stored.
func (h *Handler) Check(name string, raw json.RawMessage, secrets map[string]string) (releases.Record, error) {
	var spec protocol.TaskSpec
	if err := protocol.DecodeArgs(protocol.Request{Op: protocol.OpStageRelease, Args: raw}, &spec); err != nil {
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "task %s: %v", name, err)
	}
	full, err := spec.WithSecrets(secrets)
	if err != nil {
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "task %s: %v", name, err)
	}
	bad := func(format string, args ...any) error {
		return agent.Errorf(protocol.CodeBadRequest, "task %s: "+format, append([]any{name}, args...)...)
	}
	if full.Name != name {
		return releases.Record{}, bad("the spec names task %q", full.Name)
	}
	if err := agent.CheckProcess(protocol.KindTask, name, full.Process); err != nil {
		return releases.Record{}, err
	}
	if _, err := h.Host.Artifact(full.Artifact); err != nil {
		return releases.Record{}, agent.Errorf(protocol.CodeNotFound, "task %s: %v; stage it first", name, err)
	}
	if err := h.Host.CheckAccount("task "+name, full.Account.Name); err != nil {
		return releases.Record{}, err
	}
	if full.Dir != "" {
		if err := protocol.ValidateWindowsPath(full.Dir); err != nil {
			return releases.Record{}, bad("working folder: %v", err)
		}
	}
	if len(full.Triggers) == 0 || len(full.Triggers) > 48 {
		return releases.Record{}, bad("it needs 1 to 48 triggers, not %d", len(full.Triggers))
	}
	for _, t := range full.Triggers {
		if err := checkTrigger(t); err != nil {
			return releases.Record{}, bad("%v", err)
		}
	}
	if _, ok := instancePolicies[full.IfRunning]; !ok {
		return releases.Record{}, bad("if_running %q must be ignore, queue, parallel or stop", full.IfRunning)
	}
	if full.TimeLimitMS < 0 {
		return releases.Record{}, bad("negative time limit")
	}
	if r := full.Retry; r != nil && (r.Count < 1 || r.Count > 999 || r.IntervalMS < 60000) {
		return releases.Record{}, bad("retry: 1 to 999 times, at least a minute apart")
	}
	b, err := json.Marshal(full.WithoutSecrets())
	return releases.Record{Spec: b, Secrets: full.Secrets()}, err
}

func checkTrigger(t protocol.Trigger) error {
	switch t.Kind {
	case protocol.TriggerDaily, protocol.TriggerWeekly:
		if !clockRE.MatchString(t.At) {
			return fmt.Errorf("trigger time %q is not HH:MM", t.At)
		}
		if (t.Kind == protocol.TriggerWeekly) != (len(t.Days) > 0) {
			return fmt.Errorf("days go with a weekly trigger, and only with one")
		}
		for _, d := range t.Days {
			if !slices.Contains(weekdays, d) {
				return fmt.Errorf("%q is not a weekday", d)
			}
		}
	case protocol.TriggerEvery:
		if t.EveryMS < 60000 || t.EveryMS%60000 != 0 || t.EveryMS > 31*24*3600*1000 {
			return fmt.Errorf("an interval of %d ms is not whole minutes from one minute to 31 days", t.EveryMS)
		}
	case protocol.TriggerStartup, protocol.TriggerLogon:
	default:
		return fmt.Errorf("trigger %q must be daily, weekly, every, startup or logon", t.Kind)
	}
	return nil
}

// dir is the task's own folder under the agent's root: its host config
// (task.json), and its logs.
func (h *Handler) dir(name string) string {
	return filepath.Join(h.Host.Layout.Root, "tasks", name)
}

func (h *Handler) configPath(name string) string { return filepath.Join(h.dir(name), "task.json") }
func (h *Handler) logDir(name string) string     { return filepath.Join(h.dir(name), "logs") }
func (h *Handler) statusPath(name string) string {
	return filepath.Join(h.logDir(name), "task-status.json")
}

// Apply writes the release's host config and registers the task with
// the Task Scheduler; the rollback of a new task (EffectStop) registers
// it disabled.
func (h *Handler) Apply(name string, rec releases.Record, effect string, prev *state.Resource, emit func(string)) (json.RawMessage, map[string]string, error) {
	var spec protocol.TaskSpec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return nil, nil, err
	}
	full, err := spec.WithSecrets(rec.Secrets)
	if err != nil {
		return nil, nil, err
	}
	program, err := h.Host.Artifact(full.Artifact)
	if err != nil {
		return nil, nil, agent.Errorf(protocol.CodeNotFound, "task %s: %v", name, err)
	}
	if h.Host.Self == "" {
		return nil, nil, agent.Errorf(protocol.CodeUnsupported, "tasks need the agent's own path to run their program")
	}
	// A folder of its own that the task's account may write, as a wrapped
	// service's: programs that write relative paths fail in a read-only
	// one, and the task's own folder holds its task.json.
	workDir := filepath.Join(h.dir(name), "work")
	if full.Dir != "" {
		workDir = h.Host.HostPath(full.Dir)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, nil, err
	}
	cfg := servicehost.Config{Service: name, Program: program, Args: full.Args, Dir: workDir, Env: full.Env,
		LogDir: h.logDir(name), StatusFile: h.statusPath(name)}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := servicehost.Save(h.configPath(name), cfg); err != nil {
		return nil, nil, err
	}
	for _, g := range []struct {
		dir    string
		access winsec.Access
	}{{filepath.Dir(program), winsec.ReadExecute}, {h.dir(name), winsec.Read}, {workDir, winsec.Modify}, {cfg.LogDir, winsec.Modify}} {
		if gap, err := h.Host.Grant(g.dir, full.Account.Name, g.access); err != nil {
			return nil, nil, err
		} else if gap != "" {
			emit(fmt.Sprintf("task %s: %s", name, gap))
		}
	}
	// The definition names the working folder as the host sees it:
	// a Windows path, whatever the agent maps it to.
	defDir := full.Dir
	if defDir == "" {
		defDir = workDir
	}
	xml, err := Definition(full, h.Host.Self, []string{"task-host", "-root", h.Host.Layout.Root, "-task", name}, defDir, effect != protocol.EffectStop && !full.Disabled)
	if err != nil {
		return nil, nil, err
	}
	if err := h.Scheduler.Register(name, xml, principalOf(full.Account)); err != nil {
		return nil, nil, fmt.Errorf("registering with the Task Scheduler: %w", err)
	}
	got, ok, err := h.Scheduler.Get(name)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("reading the task back: %w", err)
	case !ok:
		return nil, nil, errors.New("the task is not there after it was registered")
	}
	b, err := json.Marshal(recorded{XMLSHA256: protocol.SHA256Hex([]byte(got.XML))})
	return b, nil, err
}

// Remove unregisters the task and removes its folder.
func (h *Handler) Remove(name string, r *state.Resource, emit func(string)) error {
	if err := h.Scheduler.Delete(name); err != nil {
		return err
	}
	if err := atomicfile.RemoveTree(h.dir(name)); err != nil {
		emit(fmt.Sprintf("could not remove %s: %v", h.dir(name), err))
	}
	return nil
}

// Observe reports the task as the Task Scheduler has it: whether it is
// there, changed by hand, and its runs. What the scheduler cannot report
// of the last run comes from the task host's own record.
func (h *Handler) Observe(name string, r *state.Resource) protocol.ResourceFacts {
	var rec recorded
	json.Unmarshal(r.Recorded, &rec)
	f := protocol.ResourceFacts{Installed: true}
	got, ok, err := h.Scheduler.Get(name)
	switch {
	case err != nil:
		f.Unreadable = map[string]string{"task": err.Error()}
		return f
	case !ok:
		f.Installed = false
		return f
	}
	if protocol.SHA256Hex([]byte(got.XML)) != rec.XMLSHA256 {
		f.Drift = []string{"definition"}
	}
	f.Unreadable = got.Unreadable
	st := &protocol.ResourceStatus{State: got.State}
	last := protocol.StatusDetail{Name: "last run", Value: "never"}
	if !got.LastRun.IsZero() {
		last = protocol.StatusDetail{Name: "last run", Time: got.LastRun.UTC()}
		if got.LastResult != nil {
			last.Value = resultText(*got.LastResult)
		}
	}
	if hs := servicehost.ReadStatus(h.statusPath(name)); hs != nil && hs.LastExitCode != nil && (got.LastRun.IsZero() || got.LastResult == nil) {
		// The scheduler did not say (Wine's cannot); the task host did.
		last = protocol.StatusDetail{Name: "last run", Time: hs.LastExit, Value: resultText(uint32(int32(*hs.LastExitCode)))}
		f.Sources = map[string]string{"last_run": "task-host"}
	}
	st.Details = append(st.Details, last)
	if !got.NextRun.IsZero() {
		st.Details = append(st.Details, protocol.StatusDetail{Name: "next run", Time: got.NextRun.UTC()})
	} else if _, gap := got.Unreadable["next_run"]; gap {
		st.Details = append(st.Details, protocol.StatusDetail{Name: "next run", Value: "not reported by this host"})
	}
	f.Status = st
	return f
}

// resultText says what a run returned: its exit code, or the Task
// Scheduler's own code for a run that did not end on its own.
func resultText(code uint32) string {
	switch code {
	case 0:
		return "exit code 0"
	case 0x00041301:
		return "still running"
	case 0x00041303:
		return "not run yet"
	case 0x8004131F:
		return "an instance was already running"
	case 0x800710E0:
		return "refused by the operator or the scheduler"
	case 0xC000013A:
		return "stopped (terminated)"
	}
	if code < 0x10000 {
		return fmt.Sprintf("exit code %d", code)
	}
	return fmt.Sprintf("code 0x%08X", code)
}

// RunHost runs one run of the task: the program its release names, with
// its environment, its output in rotated logs, and its exit code
// returned (the Task Scheduler records it as the run's result). It is
// what the task's action runs: gsd-agent task-host -root R -task NAME.
func RunHost(ctx context.Context, root, name string, logf func(string, ...any)) (int, error) {
	if err := protocol.ValidateServiceName(name); err != nil {
		return -1, err
	}
	h := &Handler{Host: agent.Host{Layout: state.Layout{Root: root}}}
	cfg, err := servicehost.Load(h.configPath(name))
	if err != nil {
		return -1, err
	}
	s := servicehost.NewSupervisor(cfg)
	s.Logf = logf
	return s.RunOnce(ctx)
}

// HostLog is the task host's own log, beside the program's.
func HostLog(root, name string) string {
	return filepath.Join(root, "tasks", name, "logs", "task-host.log")
}
