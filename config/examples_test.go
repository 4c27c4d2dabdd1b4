package config

import (
	"path/filepath"
	"testing"
)

// TestExamples loads every example as gsd plan would, with the secrets
// they declare supplied, and requires no error and no warning.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("want at least 4 examples, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, diags := Load(Options{Paths: []string{f}, Environ: []string{"GSD_VAR_winrm_password=example-only"}})
			if len(diags) > 0 {
				t.Fatalf("%s: %s", f, diags.Error())
			}
			if len(cfg.Services) == 0 || len(cfg.Hosts) == 0 {
				t.Errorf("%s declares no service or no host", f)
			}
			for _, s := range cfg.Services {
				if len(s.Hosts) == 0 {
					t.Errorf("%s: service %s has no hosts", f, s.Name)
				}
			}
		})
	}
}
