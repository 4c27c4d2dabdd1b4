package views

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gsd-deploy/gsd/apply"
	"github.com/pterm/pterm"
)

// ApplyEvent prints one line per event worth a person's attention: plain
// lines that read well in CI logs as on a terminal.
func ApplyEvent(w io.Writer, e apply.Event, color bool) {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	who := "host." + e.Host
	switch e.Kind {
	case apply.EventUpload:
		fmt.Fprintf(w, "%s: uploading %s\n", who, humanBytes(e.Bytes))
	case apply.EventStepStart:
		fmt.Fprintf(w, "%s: service.%s: %s...\n", who, e.Service, e.Action)
	case apply.EventOp:
		if e.Op == "stop" || e.Op == "start" || e.Op == "reload" {
			fmt.Fprintf(w, "%s: service.%s: %s\n", who, e.Service, e.Op)
		}
	case apply.EventStepDone:
		fmt.Fprintf(w, "%s: service.%s: %s\n", who, e.Service, paint(pterm.FgGreen, string(e.Action)+" complete"))
	case apply.EventStepFailed:
		fmt.Fprintf(w, "%s: service.%s: %s: %v\n", who, e.Service, paint(pterm.FgRed, string(e.Action)+" failed"), e.Err)
	case apply.EventHostFailed:
		fmt.Fprintf(w, "%s: %s %v\n", who, paint(pterm.FgRed, "failed:"), e.Err)
	case apply.EventBatch:
		fmt.Fprintf(w, "service.%s: batch %d of %d: %s\n", e.Service, e.Batch, e.Batches, strings.Join(e.Hosts, ", "))
	case apply.EventHealthy:
		fmt.Fprintf(w, "%s: service.%s: %s\n", who, e.Service, paint(pterm.FgGreen, "healthy"))
	case apply.EventUnhealthy:
		fmt.Fprintf(w, "%s: service.%s: %s: %v\n", who, e.Service, paint(pterm.FgRed, "unhealthy"), e.Err)
	case apply.EventRollback:
		fmt.Fprintf(w, "%s: service.%s: rolling back\n", who, e.Service)
	case apply.EventPaused:
		fmt.Fprintf(w, "service.%s: canary %s healthy; pausing\n", e.Service, strings.Join(e.Hosts, ", "))
	}
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
			fmt.Fprintf(&b, "\n%s service.%s stopped after batch %d of %d.\n", paint(pterm.FgRed, "Rollout:"), r.Service, r.BatchesDone, r.Batches)
		case r.Paused:
			fmt.Fprintf(&b, "\n%s service.%s paused after its canary. Run gsd apply -continue to upgrade the other hosts.\n", paint(pterm.FgYellow, "Rollout:"), r.Service)
		default:
			fmt.Fprintf(&b, "\n%s service.%s completed with failures within max_failures.\n", paint(pterm.FgYellow, "Rollout:"), r.Service)
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
