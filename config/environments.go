package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// chooseEnvironment reads the environments the hosts declare and the one
// this run uses (-env, else GSD_ENV), and finds that environment's
// variable file, ENVIRONMENT.gsdvars, in the configuration's directories.
// It runs before variables have values, so environment must be a
// constant: it decides which values the variables get.
func (l *loader) chooseEnvironment() {
	declared := map[string]hcl.Range{}
	for _, d := range l.hosts {
		expr := d.shape.Environment
		if absent(expr) {
			continue
		}
		if len(expr.Variables()) > 0 {
			l.ev.errorf(expr.Range(), "Environment must be a constant",
				"Host %q environment decides which hosts and which variable file a run uses, before variables have values; write it as a string such as \"production\".", d.shape.Name)
			continue
		}
		v, diags := expr.Value(nil)
		l.ev.diags = append(l.ev.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		if v.Type() != cty.String || v.IsNull() {
			l.ev.errorf(expr.Range(), "Invalid environment", "Host %q environment must be a string such as \"production\".", d.shape.Name)
			continue
		}
		name := v.AsString()
		if err := validIdentifier(name); err != nil || strings.Contains(name, ".") {
			l.ev.errorf(expr.Range(), "Invalid environment", "Host %q environment %q must be a name (letters, digits, _ and -), since it names the file %s%s.", d.shape.Name, name, name, VarsExt)
			continue
		}
		d.environment = name
		if _, seen := declared[name]; !seen {
			declared[name] = expr.Range()
		}
	}
	for n := range declared {
		l.environments = append(l.environments, n)
	}
	sort.Strings(l.environments)

	chosen := l.opts.Environment
	if chosen == "" {
		chosen = lookupEnv(l.opts.Environ, EnvironmentVar)
	}
	_, known := declared[chosen]
	switch {
	case chosen == "" && len(declared) > 0 && !l.opts.AllowUnsetVariables:
		first := declared[l.environments[0]]
		l.ev.errorf(first, "No environment chosen",
			"The hosts belong to the environments %s; choose one of them with -env NAME (or %s=NAME), so gsd knows which hosts and which variable file to use.", quoteList(l.environments), EnvironmentVar)
	case chosen != "" && len(declared) == 0:
		l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown environment",
			Detail: fmt.Sprintf("The environment %q is chosen, but no host declares an environment. Set environment = %q on the hosts it is for.", chosen, chosen)})
	case chosen != "" && !known:
		l.ev.diags = append(l.ev.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown environment",
			Detail: fmt.Sprintf("No host declares the environment %q; the hosts declare %s.%s", chosen, quoteList(l.environments), didYouMean(chosen, l.environments))})
	case chosen != "":
		l.environment = chosen
		for _, dir := range l.dirs {
			p := filepath.Join(dir, chosen+VarsExt)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				l.envVarFiles = append(l.envVarFiles, p)
			}
		}
	}
}

// isEnvVarFile reports whether a variable file's name is that of an
// environment's file, which only that environment reads.
func (l *loader) isEnvVarFile(name string) bool {
	env := strings.TrimSuffix(filepath.Base(name), VarsExt)
	for _, e := range l.environments {
		if e == env {
			return true
		}
	}
	return false
}

// inEnvironment reports whether a host takes part in this run: it belongs
// to the chosen environment or to every one, or none is chosen.
func (l *loader) inEnvironment(h *Host) bool {
	return l.environment == "" || h.Environment == "" || h.Environment == l.environment
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
