package views

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/hashicorp/hcl/v2"
)

// EventsFormatVersion is the version of the JSON event stream of
// gsd apply -json and gsd destroy -json (views/events.schema.json). A
// new event type or field raises the minor version; a change that can
// break a reader raises the major one.
const EventsFormatVersion = "1.0"

// Event is one line of the stream: what happened, when, to which host and
// resource, and the object its type carries.
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Level     string    `json:"level"` // info, warn or error
	Message   string    `json:"message"`
	Host      string    `json:"host,omitempty"`
	Address   string    `json:"address,omitempty"`

	Version    *EventVersion   `json:"version,omitempty"`
	Diagnostic *JSONDiagnostic `json:"diagnostic,omitempty"`
	Change     *EventChange    `json:"change,omitempty"`
	Changes    *EventChanges   `json:"changes,omitempty"`
	Upload     *EventUpload    `json:"upload,omitempty"`
	Progress   *EventProgress  `json:"progress,omitempty"`
	Batch      *EventBatch     `json:"batch,omitempty"`
	Health     *EventHealth    `json:"health,omitempty"`
	Summary    *EventSummary   `json:"summary,omitempty"`
}

// EventVersion opens every stream.
type EventVersion struct {
	FormatVersion string `json:"format_version"`
	GSD           string `json:"gsd"`
}

// EventChange is one planned step (planned_change) or one being carried
// out (apply_start and after).
type EventChange struct {
	Action     string   `json:"action"`
	Effect     string   `json:"effect,omitempty"`
	Version    string   `json:"version,omitempty"`
	OldVersion string   `json:"old_version,omitempty"`
	Release    string   `json:"release,omitempty"`
	Reasons    []string `json:"restart_reasons,omitempty"`
}

// EventChanges counts a plan's steps (change_summary).
type EventChanges struct {
	Add         int `json:"add"`
	Change      int `json:"change"`
	Destroy     int `json:"destroy"`
	FailedHosts int `json:"failed_hosts"`
}

// EventUpload names an artifact being uploaded.
type EventUpload struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// EventProgress is how far an upload has got.
type EventProgress struct {
	Bytes   int64   `json:"bytes"`
	Total   int64   `json:"total"`
	Percent float64 `json:"percent"`
	// Seconds and BytesPerSecond are set when it is complete.
	Seconds        float64 `json:"seconds,omitempty"`
	BytesPerSecond float64 `json:"bytes_per_second,omitempty"`
}

// EventBatch is a rollout's position.
type EventBatch struct {
	Number int      `json:"number"`
	Of     int      `json:"of"`
	Hosts  []string `json:"hosts"`
	Canary bool     `json:"canary,omitempty"`
}

// EventHealth is the result of a health gate.
type EventHealth struct {
	Kind      string `json:"kind,omitempty"`
	Probes    int    `json:"probes"`
	ElapsedMS int64  `json:"elapsed_ms"`
	Last      string `json:"last,omitempty"`
}

// EventSummary ends every stream: how the run went and the exit code gsd
// exits with.
type EventSummary struct {
	Operation string `json:"operation"` // apply or destroy
	// Outcome is no_changes, succeeded, partial (hosts skipped as
	// unreachable, the rest succeeded), paused, or failed.
	Outcome       string         `json:"outcome"`
	ExitCode      int            `json:"exit_code"`
	Hosts         int            `json:"hosts"`
	Steps         int            `json:"steps"`
	UploadedBytes int64          `json:"uploaded_bytes"`
	FailedHosts   []HostError    `json:"failed_hosts"`
	SkippedHosts  []HostError    `json:"skipped_hosts"`
	Rollouts      []EventRollout `json:"rollouts"`
	Error         string         `json:"error,omitempty"`
	Changes       *EventChanges  `json:"changes,omitempty"`
}

// HostError is a host and what went wrong there.
type HostError struct {
	Host  string `json:"host"`
	Error string `json:"error"`
}

// EventRollout is how one resource's rollout went.
type EventRollout struct {
	Address     string   `json:"address"`
	Batches     int      `json:"batches"`
	BatchesDone int      `json:"batches_done"`
	Stopped     bool     `json:"stopped"`
	Paused      bool     `json:"paused"`
	Failed      []string `json:"failed_hosts"`
	Untouched   []string `json:"untouched_hosts"`
}

// ApplyEvents writes an apply's events as JSON lines, one object a line,
// as terraform apply -json does; it is the apply's Hooks.
type ApplyEvents struct {
	mu  sync.Mutex
	enc *json.Encoder
	now func() time.Time
	// uploads: for each host and SHA-256, when it started and the last
	// tenth of it reported, so progress comes every 10 %.
	uploads map[[2]string]*uploadMark
}

type uploadMark struct {
	started time.Time
	tenth   int64
}

var _ apply.Hooks = (*ApplyEvents)(nil)

// NewApplyEvents starts a stream on w with its version event.
func NewApplyEvents(w io.Writer, gsdVersion string, now func() time.Time) *ApplyEvents {
	if now == nil {
		now = time.Now
	}
	e := &ApplyEvents{enc: json.NewEncoder(w), now: now, uploads: map[[2]string]*uploadMark{}}
	e.emit(Event{Type: "version", Message: "gsd " + gsdVersion, Version: &EventVersion{FormatVersion: EventsFormatVersion, GSD: gsdVersion}})
	return e
}

func (e *ApplyEvents) emit(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev.Timestamp = e.now().UTC()
	if ev.Level == "" {
		ev.Level = "info"
	}
	_ = e.enc.Encode(ev)
}

// Diagnostics reports configuration problems, one event each.
func (e *ApplyEvents) Diagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) {
	for _, d := range diags {
		jd := jsonDiagnostic(files, d)
		level := "error"
		if jd.Severity == "warning" {
			level = "warn"
		}
		msg := jd.Summary
		if jd.Range != nil {
			msg = fmt.Sprintf("%s:%d:%d: %s", jd.Range.Filename, jd.Range.Start.Line, jd.Range.Start.Column, jd.Summary)
		}
		e.emit(Event{Type: "diagnostic", Level: level, Message: msg, Diagnostic: &jd})
	}
}

// Error reports an error that is not about a configuration file.
func (e *ApplyEvents) Error(err error) {
	e.emit(Event{Type: "diagnostic", Level: "error", Message: err.Error(), Diagnostic: &JSONDiagnostic{Severity: "error", Summary: err.Error()}})
}

// Plan reports every step the plan holds, hosts that could not be
// planned or were skipped, and the plan's counts.
func (e *ApplyEvents) Plan(p *plan.Plan) {
	for _, h := range p.Hosts {
		if h.Error != "" {
			e.emit(Event{Type: "host_errored", Level: "error", Host: h.Host, Message: fmt.Sprintf("host.%s: %s", h.Host, h.Error)})
			continue
		}
		for _, s := range h.Steps {
			if s.Action == plan.ActionNoOp {
				continue
			}
			e.emit(Event{Type: "planned_change", Host: h.Host, Address: s.Address,
				Message: fmt.Sprintf("host.%s: %s: plan to %s", h.Host, s.Address, s.Action), Change: stepChange(s)})
		}
	}
	for _, sk := range p.Skipped {
		e.emit(Event{Type: "host_skipped", Level: "warn", Host: sk.Host, Message: fmt.Sprintf("host.%s skipped: %s", sk.Host, sk.Error)})
	}
	c := changesOf(p.Summary)
	e.emit(Event{Type: "change_summary", Message: fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", c.Add, c.Change, c.Destroy), Changes: c})
}

func changesOf(s plan.Summary) *EventChanges {
	return &EventChanges{Add: s.Add, Change: s.Change, Destroy: s.Destroy, FailedHosts: s.FailedHosts}
}

func stepChange(s *plan.Step) *EventChange {
	return &EventChange{Action: string(s.Action), Effect: s.Effect, Version: s.Version, OldVersion: s.OldVersion, Release: s.Release, Reasons: s.RestartReasons}
}

func upload(u plan.Upload) *EventUpload {
	return &EventUpload{Name: u.Name, SHA256: u.SHA256, Size: u.Size}
}

func (e *ApplyEvents) HostStart(host string) {
	e.emit(Event{Type: "host_start", Host: host, Message: fmt.Sprintf("host.%s: connecting and locking", host)})
}

func (e *ApplyEvents) Uploading(host string, u plan.Upload) {
	e.mu.Lock()
	e.uploads[[2]string{host, u.SHA256}] = &uploadMark{started: e.now()}
	e.mu.Unlock()
	e.emit(Event{Type: "upload_start", Host: host, Message: fmt.Sprintf("host.%s: uploading %s (%s)", host, u.Name, humanBytes(u.Size)),
		Upload: upload(u), Progress: &EventProgress{Total: u.Size}})
}

func (e *ApplyEvents) UploadProgress(host string, u plan.Upload, sent int64) {
	if u.Size <= 0 || sent >= u.Size {
		return
	}
	e.mu.Lock()
	m := e.uploads[[2]string{host, u.SHA256}]
	tenth := sent * 10 / u.Size
	report := false
	if m != nil {
		// A retried upload reads from the start again.
		m.tenth = min(m.tenth, tenth)
		report = tenth > m.tenth
		m.tenth = tenth
	}
	e.mu.Unlock()
	if report {
		e.emit(Event{Type: "upload_progress", Host: host, Message: fmt.Sprintf("host.%s: %s: %d%%", host, u.Name, tenth*10),
			Upload: upload(u), Progress: &EventProgress{Bytes: sent, Total: u.Size, Percent: float64(tenth * 10)}})
	}
}

func (e *ApplyEvents) Uploaded(host string, u plan.Upload) {
	e.mu.Lock()
	m := e.uploads[[2]string{host, u.SHA256}]
	e.mu.Unlock()
	p := &EventProgress{Bytes: u.Size, Total: u.Size, Percent: 100}
	if m != nil {
		took := e.now().Sub(m.started)
		p.Seconds = took.Seconds()
		if took > 0 {
			p.BytesPerSecond = float64(u.Size) / took.Seconds()
		}
	}
	e.emit(Event{Type: "upload_complete", Host: host, Message: fmt.Sprintf("host.%s: uploaded %s", host, u.Name), Upload: upload(u), Progress: p})
}

func (e *ApplyEvents) Staged(host string, s *plan.Step, release string) {
	e.emit(Event{Type: "release_staged", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: staged release %s", host, s.Address, release),
		Change: &EventChange{Action: string(s.Action), Release: release, Version: s.Version}})
}

func (e *ApplyEvents) Message(host, message string) {
	e.emit(Event{Type: "message", Host: host, Message: fmt.Sprintf("host.%s: %s", host, message)})
}

func (e *ApplyEvents) Batch(r *plan.Rollout, n int, hosts []string) {
	e.emit(Event{Type: "batch_start", Address: r.Address, Message: fmt.Sprintf("%s: batch %d of %d: %s", r.Address, n, len(r.Batches), strings.Join(hosts, ", ")),
		Batch: &EventBatch{Number: n, Of: len(r.Batches), Hosts: hosts, Canary: n == 1 && r.Canary}})
}

func (e *ApplyEvents) StepStart(host string, s *plan.Step) {
	e.emit(Event{Type: "apply_start", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: %s...", host, s.Address, s.Action), Change: stepChange(s)})
}

func (e *ApplyEvents) StepDone(host string, s *plan.Step) {
	e.emit(Event{Type: "apply_complete", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: %s complete", host, s.Address, s.Action), Change: stepChange(s)})
}

func (e *ApplyEvents) StepFailed(host string, s *plan.Step, err error) {
	e.emit(Event{Type: "apply_errored", Level: "error", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: %s failed: %v", host, s.Address, s.Action, err), Change: stepChange(s)})
}

func (e *ApplyEvents) Health(host string, s *plan.Step) {
	e.emit(Event{Type: "health_start", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: checking health", host, s.Address)})
}

func healthOf(res *protocol.HealthResult) *EventHealth {
	if res == nil {
		return nil
	}
	return &EventHealth{Kind: res.Kind, Probes: res.Probes, ElapsedMS: res.ElapsedMS, Last: res.Last}
}

func (e *ApplyEvents) Healthy(host string, s *plan.Step, res *protocol.HealthResult) {
	e.emit(Event{Type: "health_ok", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: healthy", host, s.Address), Health: healthOf(res)})
}

func (e *ApplyEvents) Unhealthy(host string, s *plan.Step, res *protocol.HealthResult, err error) {
	e.emit(Event{Type: "health_failed", Level: "error", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: unhealthy: %v", host, s.Address, err), Health: healthOf(res)})
}

func (e *ApplyEvents) RollingBack(host string, s *plan.Step) {
	e.emit(Event{Type: "rollback_start", Level: "warn", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: rolling back", host, s.Address)})
}

func (e *ApplyEvents) RolledBack(host string, s *plan.Step, err error) {
	if err != nil {
		e.emit(Event{Type: "rollback_errored", Level: "error", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: rollback failed: %v", host, s.Address, err)})
		return
	}
	e.emit(Event{Type: "rollback_complete", Host: host, Address: s.Address, Message: fmt.Sprintf("host.%s: %s: rolled back", host, s.Address)})
}

func (e *ApplyEvents) Paused(r *plan.Rollout, hosts []string) {
	e.emit(Event{Type: "rollout_paused", Address: r.Address, Message: fmt.Sprintf("%s: canary %s healthy; pausing", r.Address, strings.Join(hosts, ", ")),
		Batch: &EventBatch{Number: 1, Of: len(r.Batches), Hosts: hosts, Canary: true}})
}

func (e *ApplyEvents) HostDone(host string, err error) {
	if err != nil {
		e.emit(Event{Type: "host_complete", Level: "error", Host: host, Message: fmt.Sprintf("host.%s: failed: %v", host, err)})
		return
	}
	e.emit(Event{Type: "host_complete", Host: host, Message: fmt.Sprintf("host.%s: done", host)})
}

// RunSummary is what the closing summary event is made from.
type RunSummary struct {
	Operation string
	Plan      *plan.Plan    // nil when the run ended before a plan
	Outcome   apply.Outcome // empty when nothing was carried out
	Applied   bool
	ExitCode  int
	Err       error
}

// Summary ends the stream.
func (e *ApplyEvents) Summary(rs RunSummary) {
	s := &EventSummary{Operation: rs.Operation, ExitCode: rs.ExitCode, FailedHosts: []HostError{}, SkippedHosts: []HostError{}, Rollouts: []EventRollout{}}
	if rs.Plan != nil {
		s.Changes = changesOf(rs.Plan.Summary)
		for _, h := range rs.Plan.Hosts {
			if h.Error != "" {
				s.FailedHosts = append(s.FailedHosts, HostError{Host: h.Host, Error: h.Error})
			}
		}
		for _, sk := range rs.Plan.Skipped {
			s.SkippedHosts = append(s.SkippedHosts, HostError{Host: sk.Host, Error: sk.Error})
		}
	}
	for _, r := range rs.Outcome.Results {
		s.Hosts++
		s.Steps += r.Completed
		s.UploadedBytes += r.Uploaded
		if r.Err != nil {
			s.FailedHosts = append(s.FailedHosts, HostError{Host: r.Host, Error: r.Err.Error()})
		}
	}
	sort.Slice(s.FailedHosts, func(i, j int) bool { return s.FailedHosts[i].Host < s.FailedHosts[j].Host })
	for _, r := range rs.Outcome.Rollouts {
		er := EventRollout{Address: r.Address, Batches: r.Batches, BatchesDone: r.BatchesDone, Stopped: r.Stopped, Paused: r.Paused,
			Failed: []string{}, Untouched: orNone(r.Untouched)}
		for _, f := range r.Failures {
			er.Failed = append(er.Failed, f.Host)
		}
		s.Rollouts = append(s.Rollouts, er)
	}
	switch {
	case rs.Err != nil || rs.ExitCode == 1:
		s.Outcome = "failed"
		if rs.Err != nil {
			s.Error = rs.Err.Error()
		}
	case len(s.SkippedHosts) > 0:
		s.Outcome = "partial"
	case rs.Outcome.Paused:
		s.Outcome = "paused"
	case !rs.Applied:
		s.Outcome = "no_changes"
	default:
		s.Outcome = "succeeded"
	}
	level, msg := "info", fmt.Sprintf("%s %s: %d steps on %s, %s uploaded", strings.ToUpper(rs.Operation[:1])+rs.Operation[1:], s.Outcome, s.Steps, plural(s.Hosts, "host"), humanBytes(s.UploadedBytes))
	if s.Outcome == "failed" {
		level = "error"
	}
	if len(s.SkippedHosts) > 0 {
		msg += fmt.Sprintf("; %s skipped as unreachable", plural(len(s.SkippedHosts), "host"))
	}
	e.emit(Event{Type: "summary", Level: level, Message: msg + ".", Summary: s})
}

func orNone(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
