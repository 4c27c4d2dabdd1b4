package scm

import (
	"slices"
	"testing"
)

func TestStopOrderPutsDependentsFirst(t *testing.T) {
	deps := map[string][]string{
		"api":    {"DB", "Tcpip"},
		"web":    {"api", "db"},
		"report": {"db"},
		"db":     {"Tcpip"},
		"other":  {"Tcpip"},
		"Tcpip":  nil,
	}
	got := stopOrder("db", deps)
	if len(got) != 3 || !slices.Contains(got, "api") || !slices.Contains(got, "web") || !slices.Contains(got, "report") {
		t.Fatalf("stopOrder(db) = %v, want api, web and report", got)
	}
	// web depends on api, so it must stop first.
	if slices.Index(got, "web") > slices.Index(got, "api") {
		t.Errorf("stopOrder(db) = %v stops api before web, which depends on it", got)
	}
	if got := stopOrder("other", deps); len(got) != 0 {
		t.Errorf("stopOrder(other) = %v, want none", got)
	}
	// A cycle (which the SCM refuses to create) must not loop.
	if got := stopOrder("a", map[string][]string{"a": {"b"}, "b": {"a"}}); !slices.Equal(got, []string{"b"}) {
		t.Errorf("cycle: %v", got)
	}
}
