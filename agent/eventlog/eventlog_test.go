package eventlog_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/agent/eventlog"
	"github.com/gsd-deploy/gsd/agent/eventlog/eventlogtest"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

func TestParseRecordsRoundTrip(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	want := []eventlog.Record{
		{Number: 7, Generated: at, EventID: 0x40000001, Type: eventlog.TypeError, Source: "api", Computer: "WEB1", Strings: []string{"listening on :8080", "second"}},
		{Number: 6, Generated: at.Add(-time.Second), EventID: 3, Type: eventlog.TypeInformation, Source: "Ünïcode ☃", Computer: "W"},
	}
	var buf []byte
	for i, r := range want {
		buf = append(buf, eventlogtest.EncodeRecord(r, 12*i)...)
	}
	got, err := eventlog.ParseRecords(buf)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if l := got[0].Line(); l != "2024-05-01T12:00:00Z error 1: listening on :8080 second" {
		t.Errorf("line: %q", l)
	}
	for cut := 1; cut < len(buf); cut += 7 {
		if _, err := eventlog.ParseRecords(buf[:cut]); err == nil && cut != len(eventlogtest.EncodeRecord(want[0], 0)) {
			t.Errorf("a buffer cut at %d parsed", cut)
		}
	}
}

// FuzzParseRecords: whatever ReadEventLog hands back, the parser never
// reads outside the buffer or loops.
func FuzzParseRecords(f *testing.F) {
	f.Add(eventlogtest.EncodeRecord(eventlog.Record{Number: 1, Source: "api", Computer: "WEB1", Strings: []string{"hello"}}, 12))
	f.Add(eventlogtest.EncodeRecord(eventlog.Record{Number: 2, Source: "", Computer: ""}, 0))
	f.Add([]byte("LfLe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := eventlog.ParseRecords(b)
		if err == nil {
			total := 0
			for range recs {
				total++
			}
			if total > len(b)/56 {
				t.Fatalf("%d records from %d bytes", total, len(b))
			}
		}
	})
}

func newHandler() (*eventlog.Handler, *eventlogtest.Sources, *eventlogtest.Logs) {
	s, l := &eventlogtest.Sources{}, &eventlogtest.Logs{}
	return &eventlog.Handler{Sources: s, Logs: l}, s, l
}

func apply(t *testing.T, h *eventlog.Handler, log string, prev *state.Resource) (*state.Resource, []string) {
	t.Helper()
	spec := protocol.EventLogSpec{Name: "api", For: "service.api", Log: log}
	rec, err := h.Check("api", protocol.MustArgs(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	recorded, _, err := h.Apply("api", rec, protocol.EffectNone, prev, func(s string) { said = append(said, s) })
	if err != nil {
		t.Fatal(err)
	}
	return &state.Resource{Spec: rec.Spec, Recorded: recorded}, said
}

func TestSourceLifecycle(t *testing.T) {
	h, src, _ := newHandler()
	r, _ := apply(t, h, "Application", nil)
	if l, _ := src.Lookup("api"); l != "Application" {
		t.Fatalf("registered in %q", l)
	}
	if f := h.Observe("api", r); !f.Installed || len(f.Drift) != 0 || f.Status.State != "registered" {
		t.Fatalf("observe: %+v", f)
	}
	// Moved by hand to another log: drift; applied again: back.
	src.Remove("Application", "api")
	src.Register("System", "api")
	if f := h.Observe("api", r); !slices.Equal(f.Drift, []string{"log"}) {
		t.Errorf("drift: %+v", f)
	}
	apply(t, h, "Application", r)
	if l, _ := src.Lookup("api"); l != "Application" {
		t.Errorf("not moved back: %s", l)
	}
	if err := h.Remove("api", r, func(string) {}); err != nil {
		t.Fatal(err)
	}
	if l, _ := src.Lookup("api"); l != "" {
		t.Fatalf("still registered in %q", l)
	}
	if f := h.Observe("api", r); f.Installed {
		t.Errorf("a removed source is installed: %+v", f)
	}
}

// A source registered before gsd (by the service's own installer) is left
// as it is, and stays when the service goes.
func TestSourceRegisteredBefore(t *testing.T) {
	h, src, _ := newHandler()
	src.Register("Api Log", "api")
	r, said := apply(t, h, "Application", nil)
	if len(said) != 1 || !strings.Contains(said[0], "registered in the Api Log log already") {
		t.Errorf("said: %v", said)
	}
	if f := h.Observe("api", r); len(f.Drift) != 0 || !strings.Contains(f.Status.Details[0].Value, "in the Api Log log before gsd") {
		t.Errorf("observe: %+v", f)
	}
	h.Remove("api", r, func(string) {})
	if l, _ := src.Lookup("api"); l != "Api Log" {
		t.Errorf("a source gsd did not register was removed")
	}
}

func TestSourceWithoutEventLog(t *testing.T) {
	h := &eventlog.Handler{Sources: unavailable{}, Logs: unavailable{}}
	rec, _ := h.Check("api", protocol.MustArgs(protocol.EventLogSpec{Name: "api", Log: "Application"}), nil)
	recorded, gaps, err := h.Apply("api", rec, protocol.EffectNone, nil, func(string) {})
	if err != nil || gaps["source"] == "" {
		t.Fatal(err, gaps)
	}
	f := h.Observe("api", &state.Resource{Recorded: recorded})
	if !f.Installed || f.Sources["source"] != protocol.SourceAgentState {
		t.Errorf("observe: %+v", f)
	}
	if res, err := h.ServiceLogs("api", protocol.LogsArgs{Service: "api"}); err != nil || len(res.Lines) != 0 {
		t.Errorf("logs: %v %v", res, err)
	}
}

type unavailable struct{}

var errNoLog = fmt.Errorf("%w: test", eventlog.ErrUnavailable)

func (unavailable) Lookup(string) (string, error)           { return "", errNoLog }
func (unavailable) Register(string, string) error           { return errNoLog }
func (unavailable) Remove(string, string) error             { return errNoLog }
func (unavailable) Open(string) (eventlog.LogReader, error) { return nil, errNoLog }

// TestServiceLogs reads a native service's entries as gsd logs does: the
// last lines of its source among other sources' entries, across its own
// log too, then what follows, through a buffer too small, a wrapped log
// and a cleared one.
func TestServiceLogs(t *testing.T) {
	h, src, logs := newHandler()
	src.Register("Application", "api")
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 30 {
		logs.Write("Application", "other", eventlog.TypeInformation, at.Add(time.Duration(i)*time.Second), "noise")
		if i%3 == 0 {
			logs.Write("Application", "api", eventlog.TypeInformation, at.Add(time.Duration(i)*time.Second), fmt.Sprintf("tick %d", i))
		}
	}
	logs.Write("Application", "API", eventlog.TypeError, at.Add(time.Minute), strings.Repeat("x", 70<<10))
	res, err := h.ServiceLogs("api", protocol.LogsArgs{Service: "api", Lines: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Lines) != 3 || !strings.HasSuffix(res.Lines[0], "info 1: tick 24") || !strings.HasSuffix(res.Lines[1], "tick 27") ||
		!strings.HasPrefix(res.Lines[2], "2024-05-01T12:01:00Z error 1: xxx") {
		t.Fatalf("tail: %q", short(res.Lines))
	}
	if res.Cursor.File != protocol.EventLogCursor || res.Cursor.FileID != "Application=41" {
		t.Fatalf("cursor: %+v", res.Cursor)
	}

	// Nothing new; then new entries, in order, other sources left out.
	res, _ = h.ServiceLogs("api", protocol.LogsArgs{Service: "api", After: &res.Cursor})
	if len(res.Lines) != 0 {
		t.Fatalf("nothing new: %q", res.Lines)
	}
	logs.Write("Application", "api", eventlog.TypeWarning, at.Add(2*time.Minute), "slow")
	logs.Write("Application", "other", eventlog.TypeWarning, at.Add(2*time.Minute), "not mine")
	logs.Write("Application", "api", eventlog.TypeInformation, at.Add(3*time.Minute), "fine")
	res, _ = h.ServiceLogs("api", protocol.LogsArgs{Service: "api", After: &res.Cursor})
	if !slices.Equal(short(res.Lines), []string{"2024-05-01T12:02:00Z warning 1: slow", "2024-05-01T12:03:00Z info 1: fine"}) || res.Cursor.FileID != "Application=44" {
		t.Fatalf("follow: %q %+v", short(res.Lines), res.Cursor)
	}

	// The service's own log joins, merged by time; wrapping and clearing
	// do not lose the follower.
	src.Remove("Application", "api")
	src.Register("Api", "api")
	logs.Write("Api", "api", eventlog.TypeInformation, at.Add(4*time.Minute), "own log")
	res, _ = h.ServiceLogs("api", protocol.LogsArgs{Service: "api", Lines: 2})
	if !slices.Equal(short(res.Lines), []string{"2024-05-01T12:03:00Z info 1: fine", "2024-05-01T12:04:00Z info 1: own log"}) {
		t.Fatalf("two logs: %q", short(res.Lines))
	}
	cur := res.Cursor
	logs.Drop("Api", 1)
	logs.Write("Api", "api", eventlog.TypeInformation, at.Add(5*time.Minute), "after wrap")
	logs.Clear("Application")
	logs.Write("Application", "api", eventlog.TypeInformation, at.Add(6*time.Minute), "after clear")
	res, _ = h.ServiceLogs("api", protocol.LogsArgs{Service: "api", After: &cur})
	if !slices.Equal(short(res.Lines), []string{"2024-05-01T12:05:00Z info 1: after wrap", "2024-05-01T12:06:00Z info 1: after clear"}) {
		t.Fatalf("after wrap and clear: %q", short(res.Lines))
	}

	for _, c := range []protocol.LogCursor{{File: "stdout.log"}, {File: "eventlog", FileID: `..\x=1`}, {File: "eventlog", FileID: "Application=-1"}, {File: "eventlog", Offset: 3}} {
		if _, err := h.ServiceLogs("api", protocol.LogsArgs{Service: "api", After: &c}); err == nil {
			t.Errorf("cursor %+v accepted", c)
		}
	}
	if _, err := h.ServiceLogs("api", protocol.LogsArgs{Service: "api", Stream: "stderr"}); err == nil {
		t.Error("a stream accepted")
	}
	if logs.Reads() > 100 {
		t.Errorf("%d reads", logs.Reads())
	}
}

func short(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 60 {
			l = l[:60]
		}
		out[i] = l
	}
	return out
}
