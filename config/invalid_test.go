package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

var showDiags = flag.Bool("show", false, "print the diagnostics of each invalid input in the # ERROR: form")

// expectRe matches the expectations written at the end of each invalid
// input: "# ERROR: 12:5 Summary", "# WARNING: - Summary" (no range).
var expectRe = regexp.MustCompile(`(?m)^# (ERROR|WARNING): (\d+:\d+|-) (.+)$`)

func diagLine(d *hcl.Diagnostic) string {
	sev := "ERROR"
	if d.Severity == hcl.DiagWarning {
		sev = "WARNING"
	}
	pos := "-"
	if d.Subject != nil {
		pos = fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
	}
	return fmt.Sprintf("%s: %s %s", sev, pos, d.Summary)
}

// TestInvalidInputs loads every file in testdata/invalid and compares its
// diagnostics with the expectations written in the file itself. Every
// error must name the file, line and column.
func TestInvalidInputs(t *testing.T) {
	files, err := filepath.Glob("../testdata/invalid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("want at least 40 invalid inputs, found %d", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".hcl")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, m := range expectRe.FindAllStringSubmatch(string(src), -1) {
				want = append(want, fmt.Sprintf("%s: %s %s", m[1], m[2], m[3]))
			}
			_, diags := Load(Options{Paths: []string{path}})
			var got []string
			for _, d := range diags {
				got = append(got, diagLine(d))
				if d.Severity == hcl.DiagError && (d.Subject == nil || d.Subject.Filename != path) {
					t.Errorf("error %q does not point into %s", d.Summary, path)
				}
			}
			if *showDiags {
				for _, g := range got {
					fmt.Printf("%s\t# %s\n", name, g)
				}
			}
			if !diags.HasErrors() && !strings.Contains(string(src), "# WARNING:") {
				t.Errorf("%s loads without errors or warnings", path)
			}
			sort.Strings(want)
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("diagnostics differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}
