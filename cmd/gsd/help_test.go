package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// helpPaths lists every command and subcommand a user can ask help of.
func helpPaths() [][]string {
	var out [][]string
	for _, n := range commandNames() {
		out = append(out, []string{n})
		for _, sub := range docs[n].subcommands {
			out = append(out, []string{n, sub})
		}
	}
	return out
}

// Every command's -h exits 0 and prints its whole help on stdout, pinned
// by a golden file; gsd help COMMAND prints the same.
func TestEveryCommandHelp(t *testing.T) {
	if err := os.MkdirAll(filepath.Join("..", "..", "testdata", "golden", "help"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range helpPaths() {
		name := strings.Join(path, " ")
		r := gsd(t, "", append(append([]string{}, path...), "-h")...)
		if r.code != 0 || r.stderr != "" || r.stdout == "" {
			t.Errorf("gsd %s -h: exit %d, stderr %q", name, r.code, r.stderr)
			continue
		}
		golden(t, filepath.Join("help", strings.Join(path, "-")+".txt"), r.stdout)
		if h := gsd(t, "", append([]string{"help"}, path...)...); h.code != 0 || h.stdout != r.stdout {
			t.Errorf("gsd help %s differs from gsd %s -h: exit %d\n%s", name, name, h.code, h.stdout)
		}
		if _, ok := docs[name]; !ok && name != "completion" {
			t.Errorf("gsd %s has no help text", name)
		}
	}
}

// Each command's help documents every option it accepts, with its
// default, and at least two examples where the command takes options.
func TestHelpNamesEveryFlag(t *testing.T) {
	for _, path := range helpPaths() {
		name := strings.Join(path, " ")
		fs := flagSetOf(path)
		r := gsd(t, "", append(append([]string{}, path...), "-h")...)
		if fs == nil {
			continue
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(r.stdout, "\n  -"+f.Name) {
				t.Errorf("gsd %s -h does not list -%s", name, f.Name)
			}
		})
		if n := strings.Count(r.stdout, "(default: "); n < countFlags(fs) {
			t.Errorf("gsd %s -h gives %d defaults for %d flags", name, n, countFlags(fs))
		}
		if len(docs[name].examples) < 1 {
			t.Errorf("gsd %s has no examples", name)
		}
	}
}

func countFlags(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}

// Flags may follow the positional arguments, as in gsd plan . -host web1.
func TestFlagsAfterArguments(t *testing.T) {
	r := gsd(t, "", "validate", "../../testdata/validate/several.hcl", "-json")
	if r.code != 1 || !strings.Contains(r.stdout, `"valid": false`) {
		t.Errorf("validate PATH -json: %+v", r)
	}
	r = gsd(t, "", "plan", "../../examples/web.hcl", "-host", "nope", "-var", "winrm_password=x")
	if r.code != 1 || !strings.Contains(r.stderr, "-host nope: no such host") {
		t.Errorf("plan PATH -host: %+v", r)
	}
	// "--" ends the options: what follows is an argument even if it
	// looks like one.
	r = gsd(t, "", "validate", "--", "-json")
	if r.code != 1 || strings.Contains(r.stdout, `"valid"`) || !strings.Contains(r.stderr, "-json") {
		t.Errorf("validate -- -json: %+v", r)
	}
}

// A command offers only the options it uses.
func TestNoUnusedFlags(t *testing.T) {
	for cmd, absent := range map[string][]string{"hosts check": {"target"}, "destroy": {"continue"}, "version": {"no-color"}} {
		fs := flagSetOf(strings.Fields(cmd))
		for _, f := range absent {
			if fs != nil && fs.Lookup(f) != nil {
				t.Errorf("gsd %s offers -%s, which it does not use", cmd, f)
			}
		}
	}
}
