package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a configuration file.
// Whatever the input, Load must return (with diagnostics) and not panic;
// every error diagnostic it reports must carry a source range.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/invalid/*.hcl")
	examples, _ := filepath.Glob("../examples/*.hcl")
	for _, p := range append(seeds, examples...) {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(Starter))
	f.Add([]byte(`locals { a = range(1000000) }`))
	f.Add([]byte(`variable "x" { default = "${"${"${1}"}"}" }`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		_, diags := Load(Options{Sources: map[string][]byte{"fuzz.hcl": src}, Dir: dir, AllowUnsetVariables: len(src)%2 == 0})
		for _, d := range diags {
			if d.Severity == 0 || d.Summary == "" {
				t.Fatalf("malformed diagnostic %#v", d)
			}
		}
	})
}
