package protocol

import "time"

// Ops for health gates and operators' views.
const (
	// OpHealth probes a service on the host itself until it is healthy
	// for HealthyAfter, or the timeout passes. It always answers with a
	// HealthResult (Healthy false on failure); an error event means the
	// check could not be made at all (unknown service, bad args).
	OpHealth = "health"
	// OpLogs reads a wrapped service's log files.
	OpLogs = "logs"
)

// HealthCheck is how the agent decides that a service is healthy. With
// neither HTTP nor TCP, healthy means the SCM reports it running. In every
// kind, a service that is not running is unhealthy.
type HealthCheck struct {
	// HTTP is a URL; a probe passes on a 2xx answer whose body matches
	// BodyMatch (a regular expression) when that is set.
	HTTP      string `json:"http,omitempty"`
	BodyMatch string `json:"body_match,omitempty"`
	// TCP is host:port; a probe passes when a connection is accepted.
	TCP string `json:"tcp,omitempty"`
	// TimeoutMS bounds the whole check: the service must have been
	// healthy for HealthyAfterMS before it passes. IntervalMS is the
	// pause between probes; each probe is also bounded by it (at least
	// one second).
	TimeoutMS      int64 `json:"timeout_ms"`
	IntervalMS     int64 `json:"interval_ms"`
	HealthyAfterMS int64 `json:"healthy_after_ms"`
}

// Kind names the check for reports: "http", "tcp" or "running".
func (c HealthCheck) Kind() string {
	switch {
	case c.HTTP != "":
		return "http"
	case c.TCP != "":
		return "tcp"
	}
	return "running"
}

// HealthArgs asks for one check of one service.
type HealthArgs struct {
	Service string      `json:"service"`
	Check   HealthCheck `json:"check"`
}

// HealthResult is the outcome of a health check.
type HealthResult struct {
	Healthy bool   `json:"healthy"`
	Kind    string `json:"kind"`
	// Probes made, and the outcome of the last one in words ("HTTP 200",
	// "HTTP 503", "connection refused", "service stopped (exit code 3)").
	Probes int    `json:"probes"`
	Last   string `json:"last"`
	// HealthySince is when the passing streak began (zero if none).
	HealthySince time.Time `json:"healthy_since,omitzero"`
	// ElapsedMS is how long the check took.
	ElapsedMS int64 `json:"elapsed_ms"`
	// State is the SCM state when the check ended.
	State string `json:"state"`
	// Output is the last lines the service wrote (wrapped services'
	// log files), for a failure report; at most 20 lines.
	Output []string `json:"output,omitempty"`
}

// LogsArgs reads a wrapped service's log. With no cursor, the last Lines
// lines (default 100, at most 10000); with a cursor from an earlier
// answer, what was written after it (for following). An answer carries at
// most 4 MiB of text; its cursor then points where it stopped.
type LogsArgs struct {
	Service string `json:"service"`
	// Stream picks the log: "stdout", "stderr" (the program's output) or
	// "wrapper" (the service host's own messages: starts, exits,
	// restarts). The wrapper keeps stdout and stderr in separate files
	// and cannot interleave them, so a client has to choose; empty means
	// whichever of stdout and stderr the program wrote to last. With a
	// cursor, the cursor's file decides.
	Stream string     `json:"stream,omitempty"`
	Lines  int        `json:"lines,omitempty"`
	After  *LogCursor `json:"after,omitempty"`
}

// Log streams of a wrapped service.
const (
	StreamStdout  = "stdout"
	StreamStderr  = "stderr"
	StreamWrapper = "wrapper"
)

// LogCursor is a position in a service's log: normally its current file
// (stdout.log), or a rotated one (stdout.log.1) while lines written there
// before the rotation are still being read. File is a bare name in the
// service's log directory; the agent refuses any other.
type LogCursor struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	// FileID identifies the file itself (volume and file index, or
	// device and inode), opaque to clients. Rotation keeps the name
	// stdout.log for the new file, so only this tells that the file
	// under that name is no longer the one the cursor was in.
	FileID string `json:"file_id,omitempty"`
}

// LogsResult is lines of a service's log and where they end. A last line
// not yet ended by a newline is held back (the cursor stays before it)
// until it is complete.
type LogsResult struct {
	Lines  []string  `json:"lines"`
	Cursor LogCursor `json:"cursor"`
	// Rotated says the file of the cursor was rotated away; Lines then
	// start at the beginning of the file that followed it. Lines the
	// old file got after the cursor come first, in an answer of their
	// own (Rotated false, its cursor naming the rotated file), so a
	// follower loses none.
	Rotated bool `json:"rotated,omitempty"`
}
