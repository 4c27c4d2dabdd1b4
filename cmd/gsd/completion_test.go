package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func fakeNames([]string) configNames {
	return configNames{services: []string{"api", "web"}, tasks: []string{"nightly"}, hosts: []string{"web1", "web2"}}
}

func TestCompleteWords(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"pl"}, "plan"},
		{[]string{"re"}, "releases restart"},
		{[]string{"help", "ho"}, "hosts"},
		{[]string{"help", "hosts", ""}, "check"},
		{[]string{"hosts", ""}, "check"},
		{[]string{"hosts", "check", "-ho"}, "-host"},
		{[]string{"hosts", "check", "-ta"}, ""}, // hosts check has no -target
		{[]string{"completion", ""}, "bash fish powershell zsh"},
		{[]string{"plan", "-ta"}, "-target"},
		{[]string{"plan", "-target", ""}, "service.api service.web task.nightly"},
		{[]string{"plan", ".", "-host", "web"}, "web1 web2"},
		{[]string{"plan", "-out", ""}, ""}, // a file: the shell completes it
		{[]string{"plan", ""}, ""},
		{[]string{"restart", ""}, "service.api service.web"},
		{[]string{"restart", "service.api", ""}, ""},
		{[]string{"restart", "-host", "web1", "s"}, "service.api service.web"},
		{[]string{"logs", "a"}, "api"},
		{[]string{"unlock", ""}, "web1 web2"},
		{[]string{"apply", "-json", "-auto-approve", "-de"}, "-detailed-exitcode"},
	} {
		got := strings.Join(completeWords(c.words, fakeNames), " ")
		if got != c.want {
			t.Errorf("complete %q: %q, want %q", c.words, got, c.want)
		}
	}
}

// The scripts work in the real shells: each asks gsd __complete and
// offers what it says, names from the configuration in the current
// directory included.
func TestCompletionScripts(t *testing.T) {
	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "gsd"), nil, ".")
	dir := t.TempDir()
	src, err := os.ReadFile("../../examples/web.hcl")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "web.hcl"), src, 0o644)
	script := func(shell string) string {
		p := filepath.Join(t.TempDir(), "gsd."+shell)
		os.WriteFile(p, []byte(completionScripts[shell]), 0o644)
		return p
	}
	run := func(shell string, args ...string) string {
		t.Helper()
		cmd := exec.Command(shell, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", shell, err, out)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	cases := []struct {
		line []string // words, the last being completed
		want string
	}{
		{[]string{"gsd", "pl"}, "plan"},
		{[]string{"gsd", "plan", "-tar"}, "-target"},
		{[]string{"gsd", "restart", ""}, "service.hello"},
		{[]string{"gsd", "plan", "-host", ""}, "web1"},
	}
	// Each shell runs its script and completes words, the last one being
	// completed, printing the candidates.
	shells := map[string]func(words []string) []string{
		"bash": func(words []string) []string {
			return append([]string{"-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gsd; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script("bash")}, words...)
		},
		"zsh": func(words []string) []string {
			return append([]string{"-c", zshStubs + `source "$1"; shift; words=("$@"); CURRENT=$#; _gsd`, "zsh", script("zsh")}, words...)
		},
		"fish": func(words []string) []string {
			return []string{"-c", `source $argv[1]; complete -C $argv[2] | string replace -r '\t.*' ''; true`, script("fish"), strings.Join(words, " ")}
		},
	}
	for shell, args := range shells {
		if _, err := exec.LookPath(shell); err != nil {
			t.Logf("%s is not installed: its script is not checked", shell)
			continue
		}
		for _, c := range cases {
			if got := run(shell, args(c.line)...); got != c.want {
				t.Errorf("%s: completing %q gave %q, want %q", shell, strings.Join(c.line, " "), got, c.want)
			}
		}
	}
	// Nothing to offer: zsh completes file names.
	if _, err := exec.LookPath("zsh"); err == nil {
		got := run("zsh", "-c", zshStubs+`source "$1"; words=(gsd plan -out ""); CURRENT=4; _gsd`, "zsh", script("zsh"))
		if got != "FILES" {
			t.Errorf("zsh: a plan file name: %q, want file completion", got)
		}
	}
}

// zshStubs stand in for zsh's completion system, printing what the
// script offers.
const zshStubs = `compdef() { :; }; compadd() { shift 2; print -l -- "$@"; }; _files() { print FILES; }
`
