//go:build windows

package task

import (
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/wine"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// TestTaskScheduler registers, reads back, changes and deletes a task in
// the real Task Scheduler through ITaskService's vtables. Wine implements
// those calls, but keeps a lossy definition (it drops triggers, actions
// and the principal) and reports no run times; the test says which.
func TestTaskScheduler(t *testing.T) {
	s := hostScheduler()
	spec := nightly()
	spec.Account = protocol.Account{Name: "LocalSystem"}
	def, err := Definition(spec, `C:\windows\system32\cmd.exe`, []string{"/c", "exit 0"}, `C:\`, true)
	if err != nil {
		t.Fatal(err)
	}
	const name = "gsd-test-task"
	if _, ok, err := s.Get(name); ok || err != nil {
		t.Fatalf("before: %v %v", ok, err)
	}
	if err := s.Register(name, def, principalOf(spec.Account)); err != nil {
		t.Fatal(err)
	}
	defer s.Delete(name)
	o, ok, err := s.Get(name)
	if err != nil || !ok || o.XML == "" || o.State != "ready" {
		t.Fatalf("after Register: %+v %v %v", o, ok, err)
	}
	if !o.LastRun.IsZero() {
		t.Errorf("a task never run has a last run: %v", o.LastRun)
	}
	if wine.Detected() {
		if strings.Contains(o.XML, "cmd.exe") {
			t.Log("Wine keeps the task's action now")
		}
		for _, part := range []string{"last_result", "next_run"} {
			if o.Unreadable[part] == "" {
				t.Errorf("Wine reports %s now: %+v", part, o)
			}
		}
	} else if !strings.Contains(o.XML, "cmd.exe") || !strings.Contains(o.XML, "PT15M") {
		t.Errorf("the definition read back lacks the action or a trigger:\n%s", o.XML)
	}
	// Registering again replaces it.
	spec.Description = "changed"
	def, _ = Definition(spec, `C:\windows\system32\cmd.exe`, []string{"/c", "exit 0"}, `C:\`, true)
	if err := s.Register(name, def, principalOf(spec.Account)); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := s.Get(name); !strings.Contains(o.XML, "changed") {
		t.Errorf("not replaced:\n%s", o.XML)
	}
	if err := s.Register(name, "<Task>", principalOf(spec.Account)); err == nil {
		t.Error("malformed XML accepted")
	}
	if err := s.Delete(name); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get(name); ok || err != nil {
		t.Fatalf("after Delete: %v %v", ok, err)
	}
	if err := s.Delete(name); err != nil {
		t.Errorf("deleting it twice: %v", err)
	}
}
