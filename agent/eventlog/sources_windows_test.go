//go:build windows

package eventlog

import (
	"testing"

	"golang.org/x/sys/windows/svc/eventlog"

	"github.com/gsd-deploy/gsd/agent/internal/wine"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// TestRegistrySources registers, finds and removes a source in the real
// registry (Wine's is real too), and writes an entry through it.
func TestRegistrySources(t *testing.T) {
	src := hostSources()
	const name = "gsd-test-source"
	if log, err := src.Lookup(name); err != nil || log != "" {
		t.Fatalf("before: %q %v", log, err)
	}
	if err := src.Register("Application", name); err != nil {
		t.Fatal(err)
	}
	defer src.Remove("Application", name)
	if log, err := src.Lookup(name); err != nil || log != "Application" {
		t.Fatalf("after Register: %q %v", log, err)
	}
	// The source is usable as kardianos/service uses it.
	l, err := eventlog.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Info(1, "hello from gsd's test"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := src.Remove("Application", name); err != nil {
		t.Fatal(err)
	}
	if log, _ := src.Lookup(name); log != "" {
		t.Fatalf("after Remove: %q", log)
	}
	if err := src.Remove("Application", name); err != nil {
		t.Errorf("removing it twice: %v", err)
	}
}

// TestReadApplicationLog reads the host's Application log through
// advapi32. Wine's event log keeps nothing (ReportEvent is a stub), so
// there the log is empty and gsd logs shows no line; on Windows the entry
// written through the source comes back.
func TestReadApplicationLog(t *testing.T) {
	h := &Handler{Sources: hostSources(), Logs: hostLogs()}
	const name = "gsd-test-reader"
	if err := h.Sources.Register("Application", name); err != nil {
		t.Fatal(err)
	}
	defer h.Sources.Remove("Application", name)
	l, err := eventlog.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	l.Error(1, "read me back")
	l.Close()
	res, err := h.ServiceLogs(name, protocol.LogsArgs{Service: name, Lines: 5})
	if err != nil {
		t.Fatal(err)
	}
	if wine.Detected() {
		if len(res.Lines) != 0 {
			t.Fatalf("Wine's event log kept entries: %q", res.Lines)
		}
		return
	}
	if len(res.Lines) != 1 || res.Lines[0][len(res.Lines[0])-len("read me back"):] != "read me back" {
		t.Fatalf("lines: %q", res.Lines)
	}
}
