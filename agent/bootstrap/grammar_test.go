//go:build !windows

package bootstrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// grammarDir holds the PowerShell grammar check: tree-sitter-powershell
// and web-tree-sitter from npm (make deps installs them) and parse.mjs.
const grammarDir = "testdata/grammar"

// syntaxErrors parses each script with tree-sitter's PowerShell grammar
// and lists, per script, where it found errors or had to invent missing
// tokens.
func syntaxErrors(t *testing.T, scripts ...string) [][]string {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(grammarDir, "node_modules", "tree-sitter-powershell")); err != nil || serr != nil {
		// make deps installs both; without them the check cannot run.
		if os.Getenv("GSD_REQUIRE_SANDBOX") == "1" {
			t.Fatalf("the PowerShell grammar check needs node and %s/node_modules (make deps)", grammarDir)
		}
		t.Skipf("node or %s/node_modules missing (make deps installs them)", grammarDir)
	}
	in, err := json.Marshal(scripts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(grammarDir, "parse.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parse.mjs: %v\n%s", err, stderr.String())
	}
	var res [][]struct {
		Line, Column int
		Kind         string
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(scripts) {
		t.Fatalf("parse.mjs printed %q: %v", out, err)
	}
	all := make([][]string, len(scripts))
	for i, errs := range res {
		lines := strings.Split(scripts[i], "\n")
		for _, e := range errs {
			all[i] = append(all[i], fmt.Sprintf("%d:%d %s in %q", e.Line, e.Column, e.Kind, strings.TrimSpace(lines[e.Line-1])))
		}
	}
	return all
}

// The bootstrap is the one part of gsd nothing runs for real here:
// Wine's powershell.exe is a stub, and the sandbox performs the script
// natively. A real PowerShell grammar (tree-sitter-powershell) parses the
// script exactly as it travels, decoded from -EncodedCommand, so a
// syntax error cannot ship.
func TestScriptParsesAsPowerShell(t *testing.T) {
	params := []Params{
		{Root: `C:\ProgramData\gsd`, Path: `C:\ProgramData\gsd\bin\` + sum + `\gsd-agent.exe`, SHA256: sum},
		// A quote in the path is doubled inside the single-quoted string.
		{Root: `D:\it's here`, Path: `D:\it's here\a b.exe`, SHA256: sum},
	}
	var scripts []string
	for _, p := range params {
		args, err := Args(p)
		if err != nil {
			t.Fatal(err)
		}
		script, err := decode(args[len(args)-1])
		if err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, script)
	}
	// A broken copy of each shows the grammar catches what a slip in the
	// template would be, so the check can fail.
	good := scripts[0]
	broken := map[string]string{
		"unclosed try":        strings.Replace(good, "} catch {", "catch {", 1),
		"unterminated string": strings.Replace(good, "$want = '"+sum+"'", "$want = '"+sum, 1),
		"unbalanced paren":    strings.Replace(good, "if ($got -ne $want) {", "if ($got -ne $want {", 1),
	}
	var names []string
	for name, b := range broken {
		if b == good {
			t.Fatalf("%s: the template changed; update this test", name)
		}
		names = append(names, name)
		scripts = append(scripts, b)
	}
	errs := syntaxErrors(t, scripts...)
	for i, p := range params {
		if len(errs[i]) > 0 {
			t.Errorf("the bootstrap for %s does not parse as PowerShell:\n%s", p.Path, strings.Join(errs[i], "\n"))
		}
	}
	for i, name := range names {
		if len(errs[len(params)+i]) == 0 {
			t.Errorf("%s: the grammar found no syntax error", name)
		}
	}
}
