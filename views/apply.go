package views

import (
	"errors"
	"fmt"
	"io"

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
	}
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
