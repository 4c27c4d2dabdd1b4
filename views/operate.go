package views

import (
	"fmt"
	"io"
	"strings"

	"github.com/gsd-deploy/gsd/plan"
	"github.com/pterm/pterm"
)

// Operation renders the plan of gsd restart, stop or start: per host the
// service's state now and what will be done to it, then the batches.
// Each step's first change is its "state": the state now, and the one
// after (nil when there is nothing to do).
func Operation(w io.Writer, verb string, p *plan.Plan, color bool) error {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	var b strings.Builder
	width := 0
	for _, h := range p.Hosts {
		width = max(width, len("host."+h.Host))
	}
	for _, h := range p.Hosts {
		fmt.Fprintf(&b, "  %-*s  ", width, "host."+h.Host)
		if h.Error != "" {
			fmt.Fprintf(&b, "%s %s\n", paint(pterm.FgRed, "error:"), h.Error)
			continue
		}
		for _, s := range h.Steps {
			now, after := "", ""
			if len(s.Changes) > 0 {
				now, after = deref(s.Changes[0].Old), deref(s.Changes[0].New)
			}
			label := fmt.Sprintf("%s %s", s.Address, orDash(s.OldVersion))
			if s.Action == plan.ActionNoOp {
				fmt.Fprintf(&b, "%s: %s, nothing to do\n", label, now)
				continue
			}
			fmt.Fprintf(&b, "%s: %s → %s\n", label, now, paint(pterm.FgYellow, after))
		}
	}
	for _, r := range p.Rollouts {
		var batches []string
		for _, batch := range r.Batches {
			batches = append(batches, strings.Join(batch, ", "))
		}
		gate := "each batch health-gated, stop at the first host that fails"
		if !r.Gated {
			gate = "no health gate"
		}
		fmt.Fprintf(&b, "\n%s %s in %s: %s; %s.\n", paint(pterm.Bold, strings.ToUpper(verb[:1])+verb[1:]), r.Address,
			batchCount(len(r.Batches)), strings.Join(batches, " | "), gate)
	}
	if len(p.Rollouts) == 0 && p.Summary.FailedHosts == 0 {
		b.WriteString("\nNothing to do.\n")
	}
	if p.Summary.FailedHosts > 0 {
		fmt.Fprintf(&b, "\n%s %s could not be read.\n", paint(pterm.FgRed, "Error:"), plural(p.Summary.FailedHosts, "host"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func batchCount(n int) string {
	if n == 1 {
		return "1 batch"
	}
	return fmt.Sprintf("%d batches", n)
}
