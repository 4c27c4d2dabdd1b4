package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestFormatGolden pins gsd fmt's output and checks it is idempotent:
// formatting a formatted file changes nothing.
func TestFormatGolden(t *testing.T) {
	inputs, _ := filepath.Glob("../testdata/fmt/*")
	n := 0
	for _, in := range inputs {
		if filepath.Ext(in) == ".golden" {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, diags := Format(in, src)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			golden := in + ".golden"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%s (run go test ./config -run TestFormatGolden -update)", err)
			}
			if string(out) != string(want) {
				t.Errorf("formatted %s differs from %s:\n%s", in, golden, out)
			}
			again, _ := Format(golden, want)
			if string(again) != string(want) {
				t.Errorf("formatting %s again changed it", golden)
			}
			if string(src) == string(out) {
				t.Errorf("%s is already formatted; a golden input should need formatting", in)
			}
		})
	}
	if n < 3 {
		t.Fatalf("want at least 3 formatting inputs, found %d", n)
	}
}

func TestFormatRefusesInvalidSyntax(t *testing.T) {
	out, diags := Format("bad.hcl", []byte("service \"x\" {\n  hosts = [\n"))
	if !diags.HasErrors() || out != nil {
		t.Fatalf("Format of invalid syntax = %q, %v; want diagnostics and no output", out, diags)
	}
}
