package views

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/plan"
	"github.com/pterm/pterm"
)

// PlanJSON writes the plan as JSON: the same data the human form is
// rendered from, so the two never disagree.
func PlanJSON(w io.Writer, p *plan.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Plan renders the plan for people: per host the uploads, then each
// service that changes with its attributes and why it restarts, and a
// summary line. Services that stay as they are are not listed.
func Plan(w io.Writer, p *plan.Plan, color bool) error {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	var b strings.Builder
	if p.Environment != "" {
		fmt.Fprintf(&b, "%s %s\n\n", paint(pterm.Bold, "Environment:"), p.Environment)
	}
	if !p.Summary.HasChanges() && p.Summary.FailedHosts == 0 {
		writeRepairs(&b, p.Hosts, paint)
		b.WriteString("No changes. The hosts match the configuration.\n")
		writeSkipped(&b, p.Skipped, paint)
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, h := range p.Hosts {
		if h.Error == "" && !hostChanges(h) && len(h.Repairs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s (%s, %s)\n", paint(pterm.Bold, "host."+h.Host), h.Address, h.Transport)
		if h.Error != "" {
			fmt.Fprintf(&b, "  %s %s\n\n", paint(pterm.FgRed, "error:"), h.Error)
			continue
		}
		for _, r := range h.Repairs {
			fmt.Fprintf(&b, "  %s repaired: %s\n", paint(pterm.FgYellow, "!"), r)
		}
		if j := h.Interrupted; j != nil {
			fmt.Fprintf(&b, "  %s an activation of %s.%s (%s → %s) was interrupted; gsd apply finishes it, or returns to the release before, first\n",
				paint(pterm.FgYellow, "!"), j.Kind, j.Name, orDash(j.From), j.To)
		}
		for _, u := range h.Uploads {
			fmt.Fprintf(&b, "  upload %s  %s  %s  (for %s)\n", u.Name, plan.ShortHash(u.SHA256), humanBytes(u.Size), strings.Join(u.For, ", "))
		}
		for _, s := range h.Steps {
			if s.Action == plan.ActionNoOp {
				continue
			}
			writeStep(&b, s, paint)
		}
		b.WriteByte('\n')
	}
	writeRollouts(&b, p, paint)
	s := p.Summary
	fmt.Fprintf(&b, "%s %d to add, %d to change, %d to destroy.\n", paint(pterm.Bold, "Plan:"), s.Add, s.Change, s.Destroy)
	if s.FailedHosts > 0 {
		fmt.Fprintf(&b, "%s %s could not be planned; see the errors above.\n", paint(pterm.FgRed, "Error:"), plural(s.FailedHosts, "host"))
	}
	writeSkipped(&b, p.Skipped, paint)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRepairs lists, by host, what gsd put right while reading hosts.
func writeRepairs(b *strings.Builder, hosts []*plan.HostPlan, paint func(pterm.Color, string) string) {
	for _, h := range hosts {
		if len(h.Repairs) == 0 {
			continue
		}
		fmt.Fprintf(b, "%s (%s, %s)\n", paint(pterm.Bold, "host."+h.Host), h.Address, h.Transport)
		for _, r := range h.Repairs {
			fmt.Fprintf(b, "  %s repaired: %s\n", paint(pterm.FgYellow, "!"), r)
		}
		b.WriteByte('\n')
	}
}

func hostChanges(h *plan.HostPlan) bool {
	if h.Interrupted != nil {
		return true
	}
	for _, s := range h.Steps {
		if s.Action != plan.ActionNoOp {
			return true
		}
	}
	return false
}

func writeStep(b *strings.Builder, s *plan.Step, paint func(pterm.Color, string) string) {
	var sym, what string
	var c pterm.Color
	switch s.Action {
	case plan.ActionCreate:
		sym, c, what = "+", pterm.FgGreen, "create"
		if s.Version != "" {
			what += ", release " + s.Version
		}
	case plan.ActionReplace:
		sym, c, what = "~", pterm.FgYellow, fmt.Sprintf("new release %s → %s%s", orDash(s.OldVersion), s.Version, replaces(s))
	case plan.ActionUpdate:
		sym, c, what = "~", pterm.FgYellow, "update in place, new release"+replaces(s)
	case plan.ActionDelete:
		sym, c, what = "-", pterm.FgRed, "delete"
		if s.OldVersion != "" {
			what += ", release " + s.OldVersion
		}
		if s.From != "" {
			what += " (" + s.From + ")"
		}
	}
	if s.Release != "" && s.Action != plan.ActionDelete {
		// A release the host keeps (gsd rollback): nothing is staged.
		what = fmt.Sprintf("switch to the kept release %s (%s), from %s", orDash(s.Version), s.Release, orDash(s.OldVersion))
		if s.From != "" {
			what += " (" + s.From + ")"
		}
	}
	var after []string
	switch {
	case s.Restart:
		after = append(after, "restart ("+strings.Join(s.RestartReasons, "; ")+")")
	case s.Reload:
		after = append(after, "reload (SERVICE_CONTROL_PARAMCHANGE)")
	}
	if s.Start {
		after = append(after, "start")
	}
	line := fmt.Sprintf("  %s %s  %s", paint(c, sym), paint(pterm.Bold, s.Address), what)
	if len(after) > 0 {
		line += ", then " + strings.Join(after, ", ")
	}
	b.WriteString(line + "\n")
	width := 0
	for _, ch := range s.Changes {
		width = max(width, len(ch.Attribute))
	}
	for _, ch := range s.Changes {
		mark, val := "~", fmt.Sprintf("%s → %s", quoted(ch.Old), quoted(ch.New))
		switch {
		case ch.Old == nil:
			mark, val = "+", quoted(ch.New)
		case ch.New == nil:
			mark, val = "-", quoted(ch.Old)+" (removed)"
		}
		if ch.Sensitive {
			val = "(sensitive value changed)"
			if ch.Old == nil {
				val = "(sensitive value)"
			}
		}
		if ch.Note != "" {
			val += " (" + ch.Note + ")"
		}
		fmt.Fprintf(b, "      %s %-*s  %s\n", mark, width, ch.Attribute, val)
	}
	for _, p := range s.Problems {
		fmt.Fprintf(b, "      %s %s\n", paint(pterm.FgRed, "!"), p)
	}
}

// replaces names the release a step's new one takes over from.
func replaces(s *plan.Step) string {
	if s.From == "" {
		return ""
	}
	return " (replaces " + s.From + ")"
}

func quoted(s *string) string {
	if s == nil {
		return "(none)"
	}
	if strings.HasPrefix(*s, "(") && strings.HasSuffix(*s, ")") {
		return *s // (set), (changed), (sensitive)
	}
	if strings.HasPrefix(*s, "[") && strings.HasSuffix(*s, "]") {
		return *s // a list, already in JSON form
	}
	return fmt.Sprintf("%q", *s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// writeRollouts shows, for resources changed on more than one host, the
// batches apply goes through and what guards them. A change that is
// neither gated nor a removal (a firewall rule, a scheduled task) is made
// everywhere at once, which goes without saying.
func writeRollouts(b *strings.Builder, p *plan.Plan, paint func(pterm.Color, string) string) {
	var shown []*plan.Rollout
	for _, r := range p.Rollouts {
		if len(r.Hosts()) > 1 && (r.Gated || removal(p, r.Address)) {
			shown = append(shown, r)
		}
	}
	if len(shown) == 0 {
		return
	}
	b.WriteString(paint(pterm.Bold, "Rollout") + "\n")
	for _, r := range shown {
		fmt.Fprintf(b, "  %s:\n", r.Address)
		for i, batch := range r.Batches {
			label := fmt.Sprintf("batch %d", i+1)
			if i == 0 && r.Canary {
				label = "canary"
			}
			fmt.Fprintf(b, "    %-9s %s\n", label+":", strings.Join(batch, ", "))
		}
		if !r.Gated {
			b.WriteString("    all at once, no health gate (removal)\n")
			continue
		}
		var rules []string
		rules = append(rules, "each batch health-gated")
		if r.Canary && r.CanaryPause {
			rules = append(rules, "pause after the canary for gsd apply -continue")
		}
		if r.PauseMS > 0 {
			rules = append(rules, fmt.Sprintf("%s between batches", time.Duration(r.PauseMS)*time.Millisecond))
		}
		if r.MaxFailures == 0 {
			rules = append(rules, "stop at the first host that fails")
		} else {
			rules = append(rules, fmt.Sprintf("stop when failing hosts exceed %d", r.MaxFailures))
		}
		if r.AutoRollback {
			rules = append(rules, "roll back the "+map[bool]string{true: "rollout", false: "batch"}[r.RollbackScope == "all"]+" on failure")
		}
		fmt.Fprintf(b, "    %s\n", strings.Join(rules, "; "))
	}
	b.WriteByte('\n')
}

// removal reports whether the plan's steps on address remove it.
func removal(p *plan.Plan, address string) bool {
	for _, h := range p.Hosts {
		for _, s := range h.Steps {
			if s.Address == address && s.Action != plan.ActionNoOp {
				return s.Action == plan.ActionDelete
			}
		}
	}
	return false
}

// writeSkipped lists the hosts -skip-unreachable left out.
func writeSkipped(b *strings.Builder, skipped []plan.SkippedHost, paint func(pterm.Color, string) string) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(b, "%s %s could not be reached and %s skipped:\n", paint(pterm.FgYellow, "Skipped:"), plural(len(skipped), "host"),
		map[bool]string{true: "is", false: "are"}[len(skipped) == 1])
	for _, sk := range skipped {
		fmt.Fprintf(b, "  host.%s: %s\n", sk.Host, sk.Error)
	}
}

// Skipped lists, after an apply's summary, the hosts it left out as
// unreachable.
func Skipped(w io.Writer, skipped []plan.SkippedHost, color bool) {
	var b strings.Builder
	writeSkipped(&b, skipped, func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	})
	io.WriteString(w, b.String())
}
