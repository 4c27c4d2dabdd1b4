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
			opts := Options{Paths: []string{f}, Environ: []string{"GSD_VAR_winrm_password=example-only"}}
			// An example whose hosts declare environments is loaded in
			// each of them, as gsd plan -env NAME would.
			shape, _ := Load(Options{Paths: opts.Paths, AllowUnsetVariables: true})
			envs := shape.Environments
			if len(envs) == 0 {
				envs = []string{""}
			}
			for _, env := range envs {
				opts.Environment = env
				cfg, diags := Load(opts)
				if len(diags) > 0 {
					t.Fatalf("%s (environment %q): %s", f, env, diags.Error())
				}
				if len(cfg.Services)+len(cfg.Tasks) == 0 || len(cfg.Hosts) == 0 {
					t.Errorf("%s (environment %q) declares no service or task, or no host", f, env)
				}
				for _, s := range cfg.Services {
					if len(s.Hosts) == 0 {
						t.Errorf("%s: service %s has no hosts", f, s.Name)
					}
				}
				for _, tk := range cfg.Tasks {
					if len(tk.Hosts) == 0 {
						t.Errorf("%s: task %s has no hosts", f, tk.Name)
					}
				}
			}
		})
	}
}
