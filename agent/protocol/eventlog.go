package protocol

// KindEventLog is the event log source of a native service: registered
// when the service is created, so what it reports to the Windows event
// log reads as its own, and removed with it.
const KindEventLog = "eventlog"

// EventLogSpec is one release of an event log source: Name registered in
// Log. It holds no secret.
type EventLogSpec struct {
	// Name is the source's name: the service's, whose address For gives.
	Name string `json:"name"`
	For  string `json:"for"`
	// Log is the event log the source writes to: "Application".
	Log string `json:"log"`
}

// EventLogCursor is LogCursor.File for a native service's log read from
// the event log; the cursor's FileID then holds, opaque to clients, the
// last record read of each event log.
const EventLogCursor = "eventlog"
