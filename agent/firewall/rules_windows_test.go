//go:build windows

package firewall

import (
	"errors"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// TestWindowsFirewall puts, reads back, changes and removes a rule
// through the COM API. Wine's firewall is a stub (its rule objects have no
// type information, its rule collection keeps nothing): there every call
// must fail with ErrUnavailable, which the handler turns into a rule kept
// in the agent's state.
func TestWindowsFirewall(t *testing.T) {
	fw := hostRules()
	r := Rule{Name: "gsd-test-rule", Description: "gsd test", Group: Group, Protocol: "tcp", LocalPorts: "18080",
		RemoteAddresses: "LocalSubnet", Profiles: []string{"domain", "private", "public"}, Enabled: true}
	err := fw.Put(r)
	if wine.Detected() {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Put under Wine: %v, want ErrUnavailable", err)
		}
		if _, _, err := fw.Get(r.Name); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get under Wine: %v, want ErrUnavailable", err)
		}
		t.Log("Wine's firewall is a stub:", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Remove(r.Name)
	got, ok, err := fw.Get(r.Name)
	if err != nil || !ok || got.LocalPorts != "18080" || got.Group != Group || !got.Enabled || len(got.Profiles) != 3 {
		t.Fatalf("Get: %+v %v %v", got, ok, err)
	}
	r.LocalPorts, r.Enabled = "18081", false
	if err := fw.Put(r); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := fw.Get(r.Name); got.LocalPorts != "18081" || got.Enabled {
		t.Fatalf("after a change: %+v", got)
	}
	if err := fw.Remove(r.Name); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fw.Get(r.Name); ok || err != nil {
		t.Fatalf("after Remove: %v %v", ok, err)
	}
}
