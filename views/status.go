package views

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/pterm/pterm"
)

// StatusFormatVersion is the version of gsd status's JSON form. A field
// is only ever added within a version.
const StatusFormatVersion = 1

// Status is what runs where, as gsd status reports it. It holds no secret:
// drift is named by attribute only, never by value.
type Status struct {
	FormatVersion int `json:"format_version"`
	// CheckedAt is when the hosts were read; ages are counted from it.
	CheckedAt time.Time     `json:"checked_at"`
	Hosts     []*HostStatus `json:"hosts"`
	Summary   StatusSummary `json:"summary"`
}

// StatusSummary counts across hosts: Services and Running count
// services; Resources the other kinds (scheduled tasks, firewall rules).
type StatusSummary struct {
	Services    int `json:"services"`
	Resources   int `json:"resources,omitempty"`
	Running     int `json:"running"`
	Unhealthy   int `json:"unhealthy"`
	Drifted     int `json:"drifted"`
	FailedHosts int `json:"failed_hosts"`
}

// HostStatus is one host: its services and its other resources
// (scheduled tasks, firewall rules, event sources), or why it could not
// be read.
type HostStatus struct {
	Host         string           `json:"host"`
	Address      string           `json:"address"`
	Transport    string           `json:"transport"`
	AgentVersion string           `json:"agent_version,omitempty"`
	Error        string           `json:"error,omitempty"`
	Services     []*ServiceStatus `json:"services"`
	Resources    []*ServiceStatus `json:"resources,omitempty"`
}

// ServiceStatus is one resource on one host, a service or another kind:
// those the configuration places there and those gsd manages there that
// it no longer names.
type ServiceStatus struct {
	Address string `json:"address"` // kind.NAME
	Service string `json:"service"` // the resource's name
	// Kind is set for the kinds other than services ("task", "firewall").
	Kind string `json:"kind,omitempty"`
	Mode string `json:"mode,omitempty"`
	// Deployed is false for a service the configuration places on the
	// host that gsd has not created there, or that was deleted by hand.
	Deployed bool `json:"deployed"`
	// InConfiguration is false for a service gsd manages on the host that
	// the configuration no longer places there.
	InConfiguration bool     `json:"in_configuration"`
	Release         *Release `json:"release,omitempty"`
	Previous        *Release `json:"previous,omitempty"`
	// State is the service manager's: running, stopped, start_pending...
	// Empty when the service is not deployed.
	State    string `json:"state,omitempty"`
	PID      uint32 `json:"pid,omitempty"`
	ExitCode uint32 `json:"exit_code,omitempty"`
	// Since is when the current release was activated.
	Since  time.Time     `json:"since,omitzero"`
	Health *HealthStatus `json:"health,omitempty"`
	// Restarts counts the wrapper's restarts of a wrapped program since
	// the service started; null for native services, whose restarts the
	// service manager does not count.
	Restarts *int           `json:"restarts"`
	Wrapper  *WrapperStatus `json:"wrapper,omitempty"`
	// Drift is null when the service matches the configuration.
	Drift *Drift `json:"drift"`
	// Details are what the host reports of a resource of another kind
	// ("last run", "next run" of a scheduled task).
	Details []Detail `json:"details,omitempty"`
}

// Detail is one named fact about a resource: a value, a time, or both.
type Detail struct {
	Name  string    `json:"name"`
	Value string    `json:"value,omitempty"`
	Time  time.Time `json:"time,omitzero"`
}

// Release is one release of a service on a host.
type Release struct {
	ID        string    `json:"id,omitempty"`
	Version   string    `json:"version,omitempty"`
	Artifact  string    `json:"artifact"` // SHA-256
	Activated time.Time `json:"activated,omitzero"`
}

// Health values.
const (
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
	Unknown   = "unknown" // the check could not be made
)

// HealthStatus is the outcome of one quick check made now.
type HealthStatus struct {
	Status string `json:"status"` // healthy | unhealthy | unknown
	Kind   string `json:"kind"`   // http | tcp | running
	// Detail is the last probe's outcome in words ("HTTP 503"), or why
	// the check could not be made.
	Detail string `json:"detail,omitempty"`
}

// WrapperStatus is what the service-host wrapper of a wrapped service
// last recorded.
type WrapperStatus struct {
	Starts   int `json:"starts"`
	ChildPID int `json:"child_pid,omitempty"`
	// ChildSince is when the running program started.
	ChildSince   time.Time `json:"child_since,omitzero"`
	LastExitCode *int      `json:"last_exit_code,omitempty"`
	LastExit     time.Time `json:"last_exit,omitzero"`
	LastStop     string    `json:"last_stop,omitempty"`
}

// Drift is how a service differs from the configuration: the plan's
// action for it and the names of the attributes that differ.
type Drift struct {
	Action     string   `json:"action"` // create | update | replace | delete
	Attributes []string `json:"attributes,omitempty"`
}

// StatusJSON writes the status as JSON, the data the human form is
// rendered from.
func StatusJSON(w io.Writer, st *Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// cell is one table cell, painted when it has a colour.
type cell struct {
	text  string
	color pterm.Color
	paint bool
}

func plainCell(s string) cell                { return cell{text: s} }
func colorCell(c pterm.Color, s string) cell { return cell{text: s, color: c, paint: true} }

// StatusTable renders the status for people: a table per host, notes on
// what the table cannot hold (why a check fails, the wrapper's restarts),
// and a summary line.
func StatusTable(w io.Writer, st *Status, color bool) error {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	var b strings.Builder
	for i, h := range st.Hosts {
		if i > 0 {
			b.WriteByte('\n')
		}
		about := []string{h.Address, h.Transport}
		if h.AgentVersion != "" {
			about = append(about, "agent "+h.AgentVersion)
		}
		fmt.Fprintf(&b, "%s (%s)\n", paint(pterm.Bold, "host."+h.Host), strings.Join(about, ", "))
		if h.Error != "" {
			fmt.Fprintf(&b, "  %s %s\n", paint(pterm.FgRed, "error:"), h.Error)
			continue
		}
		all := append(append([]*ServiceStatus(nil), h.Services...), h.Resources...)
		if len(all) == 0 {
			b.WriteString("  no services here\n")
			continue
		}
		first := "SERVICE"
		if len(h.Resources) > 0 {
			first = "RESOURCE"
		}
		rows := [][]cell{{
			colorCell(pterm.Bold, first), colorCell(pterm.Bold, "RELEASE"), colorCell(pterm.Bold, "PREVIOUS"),
			colorCell(pterm.Bold, "STATE"), colorCell(pterm.Bold, "HEALTH"), colorCell(pterm.Bold, "SINCE"),
			colorCell(pterm.Bold, "RESTARTS"), colorCell(pterm.Bold, "DRIFT"),
		}}
		var notes []string
		for _, s := range all {
			rows = append(rows, serviceRow(s, st.CheckedAt))
			notes = append(notes, serviceNotes(s, st.CheckedAt)...)
		}
		writeTable(&b, rows, paint)
		for _, n := range notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	if len(st.Hosts) > 0 {
		b.WriteByte('\n')
	}
	sum := st.Summary
	what := plural(sum.Services, "service")
	if sum.Resources > 0 {
		what += " and " + plural(sum.Resources, "other resource")
	}
	fmt.Fprintf(&b, "%s %s on %s: %d running, %d unhealthy, %d with drift.\n", paint(pterm.Bold, "Status:"),
		what, plural(len(st.Hosts), "host"), sum.Running, sum.Unhealthy, sum.Drifted)
	if sum.FailedHosts > 0 {
		fmt.Fprintf(&b, "%s %s could not be read; see the errors above.\n", paint(pterm.FgRed, "Error:"), plural(sum.FailedHosts, "host"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func serviceRow(s *ServiceStatus, now time.Time) []cell {
	name := s.Service
	if s.Kind != "" {
		name = s.Address
	}
	row := []cell{plainCell(name), plainCell(releaseText(s.Release)), plainCell(releaseText(s.Previous))}
	switch {
	case !s.Deployed:
		row = append(row, plainCell("-"))
	case s.State == "running" || (s.Kind != "" && s.State != "disabled"):
		row = append(row, colorCell(pterm.FgGreen, s.State))
	case s.State == "stopped":
		row = append(row, colorCell(pterm.FgRed, s.State))
	default:
		row = append(row, colorCell(pterm.FgYellow, orDash(s.State)))
	}
	switch {
	case s.Health == nil:
		row = append(row, plainCell("-"))
	case s.Health.Status == Healthy:
		row = append(row, colorCell(pterm.FgGreen, Healthy))
	case s.Health.Status == Unhealthy:
		row = append(row, colorCell(pterm.FgRed, Unhealthy))
	default:
		row = append(row, colorCell(pterm.FgYellow, s.Health.Status))
	}
	row = append(row, plainCell(timeText(s.Since, now)))
	if s.Restarts == nil {
		row = append(row, plainCell("-"))
	} else if *s.Restarts > 0 {
		row = append(row, colorCell(pterm.FgYellow, fmt.Sprint(*s.Restarts)))
	} else {
		row = append(row, plainCell("0"))
	}
	return append(row, driftCell(s))
}

func driftCell(s *ServiceStatus) cell {
	d := s.Drift
	switch {
	case d == nil:
		return plainCell("-")
	case d.Action == "create":
		return colorCell(pterm.FgYellow, "not deployed")
	case d.Action == "delete":
		return colorCell(pterm.FgYellow, "not in the configuration")
	case len(d.Attributes) == 0:
		return colorCell(pterm.FgYellow, d.Action)
	}
	return colorCell(pterm.FgYellow, strings.Join(d.Attributes, ", "))
}

// serviceNotes says what a table cell cannot: why a health check failed,
// how the wrapper's program has fared, what the host reports of another
// kind of resource.
func serviceNotes(s *ServiceStatus, now time.Time) []string {
	var out []string
	if len(s.Details) > 0 {
		parts := make([]string, len(s.Details))
		for i, d := range s.Details {
			parts[i] = d.Name
			if !d.Time.IsZero() {
				parts[i] += " " + timeText(d.Time, now)
			}
			if d.Value != "" {
				parts[i] += ": " + d.Value
			}
		}
		out = append(out, s.Address+": "+strings.Join(parts, "; "))
	}
	// A service that is not running fails its check for that reason,
	// which the table already shows.
	if h := s.Health; h != nil && h.Status != Healthy && h.Detail != "" && s.State == "running" {
		out = append(out, fmt.Sprintf("%s: health (%s): %s", s.Service, h.Kind, h.Detail))
	}
	if s.State == "stopped" && s.ExitCode != 0 {
		out = append(out, fmt.Sprintf("%s: stopped with exit code %d", s.Service, s.ExitCode))
	}
	restarted := s.Restarts != nil && *s.Restarts > 0
	// A wrapper that started its program once and never saw it exit has
	// nothing to add to the table.
	if w := s.Wrapper; w != nil && (restarted || w.LastExitCode != nil) {
		var parts []string
		if restarted {
			parts = append(parts, "the wrapper restarted the program "+plural(*s.Restarts, "time"))
		}
		if w.LastExitCode != nil {
			last := fmt.Sprintf("last exit code %d", *w.LastExitCode)
			if !w.LastExit.IsZero() {
				last += " at " + timeText(w.LastExit, now)
			}
			if w.LastStop != "" {
				last += " (" + w.LastStop + ")"
			}
			parts = append(parts, last)
		}
		if w.ChildPID != 0 {
			running := fmt.Sprintf("program running as pid %d", w.ChildPID)
			if !w.ChildSince.IsZero() {
				running += " since " + timeText(w.ChildSince, now)
			}
			parts = append(parts, running)
		}
		out = append(out, s.Service+": "+strings.Join(parts, "; "))
	}
	return out
}

// writeTable aligns cells by their printed width, which colour codes do
// not count towards; the last column is not padded.
func writeTable(b *strings.Builder, rows [][]cell, paint func(pterm.Color, string) string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], runewidth.StringWidth(c.text))
		}
	}
	for _, r := range rows {
		b.WriteString("  ")
		for i, c := range r {
			text := c.text
			if c.paint {
				text = paint(c.color, text)
			}
			b.WriteString(text)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-runewidth.StringWidth(c.text)+2))
			}
		}
		b.WriteByte('\n')
	}
}

// releaseText is "1.4.2 (r-1f2e3d4c5b6a7d8e9f00)", the release id alone
// when the label is the default (the artifact's short hash), or the short
// hash where the host kept no id.
func releaseText(r *Release) string {
	if r == nil {
		return "-"
	}
	short := r.Artifact
	if len(short) > 12 {
		short = short[:12]
	}
	if r.ID != "" {
		if r.Version == "" || r.Version == short {
			return r.ID
		}
		return r.Version + " (" + r.ID + ")"
	}
	switch {
	case r.Version == "" || r.Version == short:
		return orDash(short)
	case short == "":
		return r.Version
	}
	return r.Version + " (" + short + ")"
}

// timeText is an absolute UTC time with its age: "2024-05-01 09:00 UTC
// (3h12m ago)", or how far off it is: "(in 14h00m)".
func timeText(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	s := t.UTC().Format("2006-01-02 15:04 UTC")
	switch {
	case now.IsZero():
	case t.After(now): // a task's next run
		s += " (in " + age(t.Sub(now)) + ")"
	default:
		s += " (" + age(now.Sub(t)) + " ago)"
	}
	return s
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
