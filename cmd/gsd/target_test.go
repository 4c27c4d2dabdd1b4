package main

import (
	"slices"
	"testing"

	"github.com/gsd-deploy/gsd/config"
)

// TestTargetForEachBlock: -target names a for_each block to mean all its
// services, or one of them by its own name.
func TestTargetForEachBlock(t *testing.T) {
	cfg, diags := config.Load(config.Options{Paths: []string{"../../examples/fleet.hcl"}, Environment: "production",
		Environ: []string{"GSD_VAR_winrm_password=example-only"}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	for target, want := range map[string][]string{
		"service.worker":        {"worker-billing", "worker-orders"},
		"service.worker-orders": {"worker-orders"},
		"service.web":           {"web"},
	} {
		sel := selectFlags{targets: []string{target}}
		got, err := sel.services(cfg)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("-target %s: %v %v, want %v", target, got, err, want)
		}
	}
	// gsd destroy takes the names alone, a for_each block's services
	// included, not what they depend on.
	sel := selectFlags{targets: []string{"service.worker"}}
	if got, err := sel.named(cfg); err != nil || !slices.Equal(got, []string{"worker-billing", "worker-orders"}) {
		t.Errorf("named -target service.worker: %v %v", got, err)
	}
	sel = selectFlags{targets: []string{"service.work"}}
	if _, err := sel.services(cfg); err == nil {
		t.Error("-target service.work was accepted")
	}
}
