package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gsd-deploy/gsd/config"
)

func init() {
	register(command{name: "completion", summary: "Print a shell completion script (bash, zsh, fish, powershell)", run: runCompletion})
	document("completion", commandDoc{args: "SHELL",
		text: `Print a script that makes SHELL complete gsd's commands, their options, and the service and host names ` +
			`of the configuration in the current directory. The script asks gsd itself what to offer, so it never falls behind ` +
			`the commands.`,
		arguments: [][2]string{{"SHELL", "bash, zsh, fish or powershell"}},
		examples: []string{
			"source <(gsd completion bash)                      # bash, now; add it to ~/.bashrc to keep it",
			"gsd completion zsh > \"${fpath[1]}/_gsd\"            # zsh, from the next shell on",
			"gsd completion fish > ~/.config/fish/completions/gsd.fish",
			"gsd completion powershell | Out-String | Invoke-Expression",
		}})
	register(command{name: "__complete", hidden: true, run: runComplete})
}

var completionScripts = map[string]string{
	"bash": `# bash completion for gsd: source <(gsd completion bash)
_gsd() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -o nosort -F _gsd gsd
`,
	"zsh": `#compdef gsd
# zsh completion for gsd: gsd completion zsh > "${fpath[1]}/_gsd"
_gsd() {
    local -a candidates
    candidates=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ -n "${candidates[1]}" ]]; then
        compadd -Q -- "${candidates[@]}"
    else
        _files
    fi
}
if [[ "${funcstack[1]}" == "_gsd" ]]; then
    _gsd "$@"
else
    compdef _gsd gsd
fi
`,
	"fish": `# fish completion for gsd: gsd completion fish > ~/.config/fish/completions/gsd.fish
function __gsd_candidates
    set -l words (commandline -opc) (commandline -ct)
    $words[1] __complete $words[2..-1] 2>/dev/null
end
function __gsd_no_candidates
    not count (__gsd_candidates) >/dev/null
end
complete -c gsd -f -a '(__gsd_candidates)'
complete -c gsd -F -n __gsd_no_candidates
`,
	"powershell": `# PowerShell completion for gsd: gsd completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName gsd -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | Where-Object { $_.Extent.StartOffset -lt $cursorPosition } | ForEach-Object { $_.ToString() })
    if ($wordToComplete -eq '') { $words += '""' }
    $rest = @()
    if ($words.Count -gt 1) { $rest = $words[1..($words.Count - 1)] }
    & $words[0] __complete @rest 2>$null | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }
}
`,
}

func runCompletion(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "completion", "SHELL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{fmt.Errorf("gsd completion needs one shell: bash, zsh, fish or powershell")}
	}
	script, ok := completionScripts[fs.Arg(0)]
	if !ok {
		return fmt.Errorf("no completion for shell %q: bash, zsh, fish or powershell", fs.Arg(0))
	}
	_, err := io.WriteString(env.stdout, script)
	return err
}

// runComplete is what the scripts call: the words after gsd, the last
// one being completed (possibly empty), in; one candidate a line, out.
// No candidate lets the shell complete file names.
func runComplete(env *cliEnv, args []string) error {
	if len(args) == 0 {
		args = []string{""}
	}
	// PowerShell cannot pass an empty argument to a program on every
	// version; its script passes "" quoted.
	if args[len(args)-1] == `""` {
		args[len(args)-1] = ""
	}
	for _, c := range completeWords(args, loadNames) {
		fmt.Fprintln(env.stdout, c)
	}
	return nil
}

var completionShells = []string{"bash", "fish", "powershell", "zsh"}

// configNames are the names completion offers from a configuration.
type configNames struct{ services, tasks, hosts []string }

// completeWords returns the candidates for the last of words; names loads
// the configuration's names, only when needed, from the paths given.
func completeWords(words []string, names func(paths []string) configNames) []string {
	cur, prev := words[len(words)-1], words[:len(words)-1]
	if len(prev) == 0 {
		return withPrefix(commandNames(), cur)
	}
	cmd := prev[0]
	path := []string{cmd}
	switch {
	case cmd == "help":
		switch len(prev) {
		case 1:
			return withPrefix(commandNames(), cur)
		case 2:
			return withPrefix(docs[prev[1]].subcommands, cur)
		}
		return nil
	case cmd == "completion":
		if len(prev) == 1 {
			return withPrefix(completionShells, cur)
		}
		return nil
	case len(docs[cmd].subcommands) > 0:
		if len(prev) == 1 {
			return withPrefix(docs[cmd].subcommands, cur)
		}
		path = append(path, prev[1])
	}
	fs := flagSetOf(path)
	if fs == nil {
		return nil
	}
	positional := positionals(prev[len(path):], fs)
	if last := prev[len(prev)-1]; strings.HasPrefix(last, "-") && len(prev) > len(path) {
		if f := fs.Lookup(strings.TrimLeft(last, "-")); f != nil && takesValue(f) {
			switch f.Name {
			case "host":
				return withPrefix(names(positional).hosts, cur)
			case "target":
				n := names(positional)
				return withPrefix(append(addresses(n.services), taskAddresses(n.tasks)...), cur)
			}
			return nil
		}
	}
	if strings.HasPrefix(cur, "-") {
		var flags []string
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, "-"+f.Name) })
		return withPrefix(flags, cur)
	}
	if len(positional) > 0 {
		return nil
	}
	switch cmd {
	case "restart", "stop", "start", "releases", "rollback":
		return withPrefix(addresses(names(nil).services), cur)
	case "logs":
		return withPrefix(names(nil).services, cur)
	case "unlock":
		return withPrefix(names(nil).hosts, cur)
	}
	return nil
}

// positionals picks the positional arguments out of words, skipping
// options and their values.
func positionals(words []string, fs *flag.FlagSet) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || w == "-" {
			out = append(out, w)
			continue
		}
		if strings.Contains(w, "=") {
			continue
		}
		if f := fs.Lookup(strings.TrimLeft(w, "-")); f != nil && takesValue(f) {
			i++
		}
	}
	return out
}

func withPrefix(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func addresses(services []string) []string { return prefixed("service.", services) }

func taskAddresses(tasks []string) []string { return prefixed("task.", tasks) }

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, s := range names {
		out[i] = prefix + s
	}
	return out
}

// loadNames reads the service, task and host names of the configuration at
// paths (the current directory when none), quietly: completion never
// prints diagnostics and needs no variable values.
func loadNames(paths []string) configNames {
	var existing []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			existing = append(existing, p)
		}
	}
	cfg, _ := config.Load(config.Options{Paths: existing, AllowUnsetVariables: true, Environ: os.Environ()})
	var n configNames
	if cfg == nil {
		return n
	}
	for _, s := range cfg.Services {
		n.services = append(n.services, s.Name)
	}
	for _, t := range cfg.Tasks {
		n.tasks = append(n.tasks, t.Name)
	}
	for _, h := range cfg.Hosts {
		n.hosts = append(n.hosts, h.Name)
	}
	slices.Sort(n.services)
	slices.Sort(n.tasks)
	slices.Sort(n.hosts)
	return n
}

// flagSetOf returns the flag set of a command (path is {"plan"} or
// {"hosts", "check"}) without running it: the command is asked for its
// help, which every command answers before doing anything else.
func flagSetOf(path []string) *flag.FlagSet {
	c, ok := commands[path[0]]
	if !ok {
		return nil
	}
	var got *flag.FlagSet
	env := &cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" },
		onFlagSet: func(_ string, fs *flag.FlagSet) {
			if got == nil {
				got = fs
			}
		}}
	_ = c.run(env, append(append([]string{}, path[1:]...), "-h"))
	return got
}
