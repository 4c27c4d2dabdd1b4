package views

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/views/eventstest"
)

// fakeClock advances by a fixed step on every reading, so rates and
// elapsed times in rendered output are the same on every run.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

var (
	progressUpload = plan.Upload{Name: "api.exe", SHA256: strings.Repeat("ab", 32), Size: 8 << 20, For: []string{"api"}}
	progressStep   = &plan.Step{Address: "service.api", Kind: "service", Service: "api", Action: plan.ActionReplace,
		Effect: protocol.EffectRestart, Version: "2.0.0", OldVersion: "1.0.0", RestartReasons: []string{"binary changed"}}
	progressRollout = &plan.Rollout{Address: "service.api", Service: "api", Batches: [][]string{{"web1"}, {"web2"}}, Canary: true, Gated: true}
)

// scriptApply calls every hook as a two-host apply does: both upload and
// stage, then a canary batch that passes and a batch whose host fails
// its health gate and is rolled back.
func scriptApply(h apply.Hooks) {
	for _, host := range []string{"web1", "web2"} {
		h.HostStart(host)
		h.Uploading(host, progressUpload)
		for sent := int64(1 << 20); sent <= progressUpload.Size; sent += 1 << 20 {
			h.UploadProgress(host, progressUpload, sent)
		}
		h.Uploaded(host, progressUpload)
		h.Staged(host, progressStep, "r-0123456789abcdef0123")
	}
	h.Batch(progressRollout, 1, []string{"web1"})
	h.StepStart("web1", progressStep)
	h.Message("web1", "stopping api")
	h.Message("web1", "starting api")
	h.StepDone("web1", progressStep)
	h.Health("web1", progressStep)
	h.Healthy("web1", progressStep, &protocol.HealthResult{Kind: "http", Healthy: true, Probes: 3, ElapsedMS: 2100, Last: "HTTP 200"})
	h.Batch(progressRollout, 2, []string{"web2"})
	h.StepStart("web2", progressStep)
	h.StepDone("web2", progressStep)
	h.Health("web2", progressStep)
	res := &protocol.HealthResult{Kind: "http", Probes: 30, ElapsedMS: 60000, Last: "HTTP 503"}
	h.Unhealthy("web2", progressStep, res, errors.New("http check failed after 1m0s and 30 probes: HTTP 503"))
	h.RollingBack("web2", progressStep)
	h.RolledBack("web2", progressStep, nil)
	h.HostDone("web1", nil)
	h.HostDone("web2", errors.New("host web2: service.api: http check failed"))
}

// The plain progress of an apply, as CI logs show it, is pinned.
func TestApplyProgressPlainGolden(t *testing.T) {
	var buf bytes.Buffer
	scriptApply(NewApplyHooks(&buf, false).WithClock(fakeClock(250 * time.Millisecond)))
	golden(t, "apply-progress.txt", buf.Bytes())
}

// The JSON stream of the same apply is valid against the published
// schema, from its version event to its summary, and pinned.
func TestApplyEventsSchema(t *testing.T) {
	var buf bytes.Buffer
	e := NewApplyEvents(&buf, "1.2.3", fakeClock(250*time.Millisecond))
	p := &plan.Plan{Hosts: []*plan.HostPlan{
		{Host: "web1", Steps: []*plan.Step{progressStep}, Uploads: []plan.Upload{progressUpload}},
		{Host: "web2", Steps: []*plan.Step{progressStep}, Uploads: []plan.Upload{progressUpload}},
		{Host: "web3", Error: "facts could not be read"},
	}, Summary: plan.Summary{Change: 2, FailedHosts: 1}, Skipped: []plan.SkippedHost{{Host: "web4", Error: "host unreachable"}}}
	e.Error(errors.New("a problem that is no configuration's"))
	e.Plan(p)
	scriptApply(e)
	e.Paused(progressRollout, []string{"web1"})
	e.RolledBack("web2", progressStep, errors.New("the agent did not answer"))
	e.Summary(RunSummary{Operation: "apply", Plan: p, Applied: true, ExitCode: 1, Err: errors.New("a rollout failed"),
		Outcome: apply.Outcome{Results: []apply.Result{{Host: "web1", Completed: 1, Uploaded: progressUpload.Size}, {Host: "web2", Err: errors.New("unhealthy")}},
			Rollouts: []apply.RolloutReport{{Address: "service.api", Batches: 2, BatchesDone: 2, Stopped: true, Failures: []apply.HostFailure{{Host: "web2"}}}}}})
	types, err := eventstest.Validate(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ty := range types {
		seen[ty] = true
	}
	// Every type the schema names is exercised here but one that needs a
	// configuration file (diagnostic is: from Error).
	for _, want := range []string{"version", "diagnostic", "planned_change", "host_errored", "host_skipped", "change_summary", "host_start",
		"upload_start", "upload_progress", "upload_complete", "release_staged", "message", "batch_start", "apply_start", "apply_complete",
		"health_start", "health_ok", "health_failed", "rollback_start", "rollback_complete", "rollback_errored", "rollout_paused", "host_complete", "summary"} {
		if !seen[want] {
			t.Errorf("no %s event in the scripted run", want)
		}
	}
	// Each upload reports 1 to 7 MiB of 8: tenths 1, 2, 3, 5, 6, 7 and 8,
	// each once.
	if n := strings.Count(strings.Join(types, " "), "upload_progress"); n != 2*7 {
		t.Errorf("%d upload_progress events for two 8 MiB uploads read by the MiB, want 7 each (each new tenth)", n)
	}
	golden(t, "apply-events.jsonl", buf.Bytes())

	// A stream that breaks the schema is caught: the check can fail.
	bad := bytes.Replace(buf.Bytes(), []byte(`"type":"health_ok"`), []byte(`"type":"health_okay"`), 1)
	if _, err := eventstest.Validate(bad); err == nil {
		t.Errorf("an unknown event type passed the schema")
	}
}

// The live area shows one line per host with its phase: a bar with bytes
// and rate while uploading, a spinner and the time so far in a health
// gate, and the rollout's position above.
func TestLiveRender(t *testing.T) {
	var out bytes.Buffer
	v := newLive(&out, fakeClock(time.Second))
	v.HostStart("web1")
	v.HostStart("web2")
	v.Uploading("web1", progressUpload)
	v.UploadProgress("web1", progressUpload, 4<<20)
	v.Batch(progressRollout, 2, []string{"web2"})
	v.Health("web2", progressStep)
	v.Message("web2", "api: HTTP 503")
	got := v.render()
	for _, want := range []string{"service.api: batch 2 of 2 (web2)", "host.web1  uploading api.exe", "4.0 MiB / 8.0 MiB", "MiB/s",
		"host.web2  service.api: health check", "api: HTTP 503", "█", "░"} {
		if !strings.Contains(got, want) {
			t.Errorf("live area lacks %q:\n%s", want, got)
		}
	}
	v.HostDone("web1", nil)
	if got := v.render(); !strings.Contains(got, "✓") || !strings.Contains(got, "host.web1  done") {
		t.Errorf("a finished host:\n%s", got)
	}
	// The plain lines go to the log that scrolls above the area.
	if !strings.Contains(v.log.String(), "host.web1: uploading api.exe (8.0 MiB)") {
		t.Errorf("log:\n%s", v.log.String())
	}
}

// A line logged before the area's first frame, and a run that ends before
// any frame, leave the area alone: pterm's area cannot be cleared before it
// was drawn (it panicked, ending gsd in the middle of an apply).
func TestLiveLogBeforeFirstFrame(t *testing.T) {
	var out bytes.Buffer
	v := newLive(&out, time.Now)
	v.area = v.newArea()
	v.Message("web1", "connecting")
	v.draw()
	if !strings.Contains(out.String(), "connecting") {
		t.Errorf("the line logged before the first frame is not shown:\n%s", out.String())
	}

	out.Reset()
	w := newLive(&out, time.Now)
	w.area = w.newArea()
	w.Message("web2", "never drawn")
	close(w.done) // no drawing loop runs
	w.Close()
	if !strings.Contains(out.String(), "never drawn") {
		t.Errorf("a run that ends before any frame loses its lines:\n%s", out.String())
	}
}
