package views

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
	"github.com/gsd-deploy/gsd/plan"
	"github.com/pterm/pterm"
)

// ApplyHooks prints one line per event worth a person's attention: plain
// lines that read well in CI logs as on a terminal.
type ApplyHooks struct {
	apply.NilHooks
	w     io.Writer
	color bool
	now   func() time.Time
	// uploads holds when each upload (host and SHA-256) started, for its
	// rate.
	uploads map[[2]string]time.Time
}

// NewApplyHooks renders an apply's progress to w.
func NewApplyHooks(w io.Writer, color bool) *ApplyHooks {
	return &ApplyHooks{w: w, color: color, now: time.Now, uploads: map[[2]string]time.Time{}}
}

// WithClock makes the view read the time from now (tests pin rates).
func (v *ApplyHooks) WithClock(now func() time.Time) *ApplyHooks {
	v.now = now
	return v
}

func (v *ApplyHooks) paint(c pterm.Color, s string) string {
	if !v.color {
		return s
	}
	return c.Sprint(s)
}

func (v *ApplyHooks) Uploading(host string, u plan.Upload) {
	v.uploads[[2]string{host, u.SHA256}] = v.now()
	fmt.Fprintf(v.w, "host.%s: uploading %s (%s)\n", host, u.Name, humanBytes(u.Size))
}

func (v *ApplyHooks) Uploaded(host string, u plan.Upload) {
	took := v.now().Sub(v.uploads[[2]string{host, u.SHA256}])
	fmt.Fprintf(v.w, "host.%s: uploaded %s (%s in %s%s)\n", host, u.Name, humanBytes(u.Size), took.Round(time.Millisecond), rateText(u.Size, took))
}

// rateText is ", 12.0 MiB/s", or nothing for an instant.
func rateText(n int64, took time.Duration) string {
	if took <= 0 {
		return ""
	}
	return ", " + humanBytes(int64(float64(n)/took.Seconds())) + "/s"
}

func (v *ApplyHooks) Health(host string, s *plan.Step) {
	fmt.Fprintf(v.w, "host.%s: %s: checking health\n", host, s.Address)
}

func (v *ApplyHooks) Staged(host string, s *plan.Step, release string) {
	fmt.Fprintf(v.w, "host.%s: %s: staged release %s\n", host, s.Address, release)
}

func (v *ApplyHooks) Message(host, message string) {
	fmt.Fprintf(v.w, "host.%s: %s\n", host, message)
}

func (v *ApplyHooks) StepStart(host string, s *plan.Step) {
	what := string(s.Action)
	if s.Effect != "" && s.Effect != "none" && s.Action != plan.ActionDelete {
		what += ", " + s.Effect
	}
	fmt.Fprintf(v.w, "host.%s: %s: %s...\n", host, s.Address, what)
}

func (v *ApplyHooks) StepDone(host string, s *plan.Step) {
	fmt.Fprintf(v.w, "host.%s: %s: %s\n", host, s.Address, v.paint(pterm.FgGreen, string(s.Action)+" complete"))
}

func (v *ApplyHooks) StepFailed(host string, s *plan.Step, err error) {
	fmt.Fprintf(v.w, "host.%s: %s: %s: %v\n", host, s.Address, v.paint(pterm.FgRed, string(s.Action)+" failed"), err)
}

func (v *ApplyHooks) HostDone(host string, err error) {
	if err != nil {
		fmt.Fprintf(v.w, "host.%s: %s %v\n", host, v.paint(pterm.FgRed, "failed:"), err)
	}
}

func (v *ApplyHooks) Batch(r *plan.Rollout, n int, hosts []string) {
	fmt.Fprintf(v.w, "%s: batch %d of %d: %s\n", r.Address, n, len(r.Batches), strings.Join(hosts, ", "))
}

func (v *ApplyHooks) Healthy(host string, s *plan.Step, _ *protocol.HealthResult) {
	fmt.Fprintf(v.w, "host.%s: %s: %s\n", host, s.Address, v.paint(pterm.FgGreen, "healthy"))
}

func (v *ApplyHooks) Unhealthy(host string, s *plan.Step, _ *protocol.HealthResult, err error) {
	fmt.Fprintf(v.w, "host.%s: %s: %s: %v\n", host, s.Address, v.paint(pterm.FgRed, "unhealthy"), err)
}

func (v *ApplyHooks) RollingBack(host string, s *plan.Step) {
	fmt.Fprintf(v.w, "host.%s: %s: rolling back\n", host, s.Address)
}

func (v *ApplyHooks) RolledBack(host string, s *plan.Step, err error) {
	if err != nil {
		fmt.Fprintf(v.w, "host.%s: %s: %s: %v\n", host, s.Address, v.paint(pterm.FgRed, "rollback failed"), err)
		return
	}
	fmt.Fprintf(v.w, "host.%s: %s: rolled back\n", host, s.Address)
}

func (v *ApplyHooks) Paused(r *plan.Rollout, hosts []string) {
	fmt.Fprintf(v.w, "%s: canary %s healthy; pausing\n", r.Address, strings.Join(hosts, ", "))
}

// RolloutReport prints, for each rollout that did not simply complete,
// where it stopped, which host failed which check, what the service
// printed last, and what was rolled back or left alone.
func RolloutReport(w io.Writer, out apply.Outcome, color bool) {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	var b strings.Builder
	for _, r := range out.Rollouts {
		if !r.Stopped && !r.Paused && len(r.Failures) == 0 {
			continue
		}
		switch {
		case r.Stopped:
			fmt.Fprintf(&b, "\n%s %s stopped after batch %d of %d.\n", paint(pterm.FgRed, "Rollout:"), r.Address, r.BatchesDone, r.Batches)
		case r.Paused:
			fmt.Fprintf(&b, "\n%s %s paused after its canary. Run gsd apply -continue to upgrade the other hosts.\n", paint(pterm.FgYellow, "Rollout:"), r.Address)
		default:
			fmt.Fprintf(&b, "\n%s %s completed with failures within max_failures.\n", paint(pterm.FgYellow, "Rollout:"), r.Address)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  host.%s failed its %s: %s\n", f.Host, f.Phase, f.Err)
			if f.Health != nil && len(f.Health.Output) > 0 {
				b.WriteString("    the service printed last:\n")
				for _, line := range f.Health.Output {
					fmt.Fprintf(&b, "      | %s\n", line)
				}
			}
			if f.Rollback != "" {
				fmt.Fprintf(&b, "    rollback: %s\n", f.Rollback)
			}
		}
		for _, note := range r.AlsoRolledBack {
			fmt.Fprintf(&b, "  also rolled back: host.%s\n", note)
		}
		if len(r.Untouched) > 0 {
			fmt.Fprintf(&b, "  left untouched: %s\n", strings.Join(r.Untouched, ", "))
		}
	}
	io.WriteString(w, b.String())
}

// ApplySummary prints what was done and returns an error when any host
// failed, which makes gsd exit 1.
func ApplySummary(w io.Writer, results []apply.Result, color bool) error {
	failed, steps := 0, 0
	var sent int64
	for _, r := range results {
		steps += r.Completed
		sent += r.Uploaded
		if r.Err != nil {
			failed++
		}
	}
	fmt.Fprintf(w, "\nApply finished: %d steps on %s, %s uploaded.\n", steps, plural(len(results), "host"), humanBytes(sent))
	if failed > 0 {
		for _, r := range results {
			if r.Err != nil && !errors.Is(r.Err, apply.ErrStopped) {
				fmt.Fprintf(w, "  %v\n", r.Err)
			}
		}
		return fmt.Errorf("%s failed", plural(failed, "host"))
	}
	return nil
}
