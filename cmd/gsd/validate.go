package main

import (
	"fmt"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/views"
	"github.com/hashicorp/hcl/v2"
)

func init() {
	register(command{name: "validate", summary: "Check the configuration and report every problem", run: runValidate})
}

func runValidate(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "validate", "[PATH...]")
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := cf.options(fs.Args())
	// validate checks shape and references without needing secrets;
	// values that are given are still checked.
	opts.AllowUnsetVariables = true
	cfg, diags := config.Load(opts)
	if *asJSON {
		if err := views.ValidationJSON(env.stdout, cfg.Files, diags); err != nil {
			return err
		}
		if diags.HasErrors() {
			return errReported
		}
		return nil
	}
	color := cf.errColor(env)
	if len(diags) > 0 {
		renderDiagnostics(env, cfg.Files, diags, color)
		fmt.Fprintln(env.stderr)
	}
	summary := views.DiagnosticsSummary(diags)
	if diags.HasErrors() {
		fmt.Fprintln(env.stderr, summary)
		return errReported
	}
	fmt.Fprintln(env.stdout, summary)
	return nil
}

func renderDiagnostics(env *cliEnv, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) {
	_ = views.Diagnostics(env.stderr, files, diags, color)
}
