package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/gsd-deploy/gsd/config"
	"github.com/mitchellh/go-wordwrap"
)

// commandDoc is what a command's -h teaches: what it does, its
// arguments and examples; its options come from its flag set, so they
// never drift from what it accepts.
type commandDoc struct {
	// args is the synopsis of the positional arguments: "[PATH...]".
	args string
	// text says what the command does, in a paragraph or two.
	text string
	// arguments explain each positional argument: {"PATH", "..."}.
	arguments [][2]string
	examples  []string
	// subcommands of a group (gsd hosts, gsd sandbox), in order.
	subcommands []string
}

var docs = map[string]commandDoc{}

// document records the help of a command, or of "group sub" for a
// subcommand. Each command's file documents it from init.
func document(name string, d commandDoc) {
	if _, dup := docs[name]; dup {
		panic("gsd: command documented twice: " + name)
	}
	docs[name] = d
}

// flagHelp ties a flag set to its command's help, so parseFlags can print
// it on -h.
var (
	flagHelpMu sync.Mutex
	flagHelp   = map[*flag.FlagSet]func(){}
)

// newFlagSet returns the flag set of a command (name is "plan", or
// "hosts check" for a subcommand). Errors go to stderr with a short
// usage line; -h prints the whole help to stdout and exits 0.
func newFlagSet(env *cliEnv, name, argsHelp string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	synopsis := synopsisOf(name, argsHelp)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "%s\nRun 'gsd help %s' for its options and examples.\n", synopsis, name)
	}
	flagHelpMu.Lock()
	flagHelp[fs] = func() { writeHelp(env.stdout, name, synopsis, fs) }
	flagHelpMu.Unlock()
	if env.onFlagSet != nil {
		env.onFlagSet(name, fs)
	}
	return fs
}

func synopsisOf(name, argsHelp string) string {
	if d, ok := docs[name]; ok && d.args != "" {
		argsHelp = d.args
	}
	return strings.TrimSpace(fmt.Sprintf("Usage: gsd %s [options] %s", name, argsHelp))
}

// parseFlags parses args with flags before, between or after the
// positional arguments (gsd plan . -host web1); fs.Args() then holds the
// positional ones. "--" ends the flags. A bad command line is reported
// (the flag package prints it) and marked as such; -h prints the help.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				flagHelpMu.Lock()
				help := flagHelp[fs]
				flagHelpMu.Unlock()
				if help != nil {
					help()
				}
				return err
			}
			usage()
			return usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	// Parse again so that fs.Args() is the positional arguments; the
	// values already set stay.
	return fs.Parse(append([]string{"--"}, positional...))
}

// valueNames are the placeholders of flags whose values have a shape.
var valueNames = map[string]string{
	"var": "NAME=VALUE", "var-file": "FILE", "target": "ADDRESS", "host": "NAME", "out": "FILE",
	"parallelism": "N", "lock-timeout": "DURATION", "n": "N", "to": "VERSION|ID", "dir": "DIR",
	"max-envelope-size": "BYTES", "cut-after": "BYTES", "delay-ms": "MS",
}

// writeHelp prints a command's whole help: synopsis, what it does, its
// arguments, every option with its default, and examples.
func writeHelp(w io.Writer, name, synopsis string, fs *flag.FlagSet) {
	d := docs[name]
	var b strings.Builder
	b.WriteString(synopsis + "\n")
	if d.text != "" {
		b.WriteString("\n" + wordwrap.WrapString(strings.TrimSpace(d.text), helpWidth) + "\n")
	}
	if len(d.arguments) > 0 {
		b.WriteString("\nArguments:\n")
		width := 0
		for _, a := range d.arguments {
			width = max(width, len(a[0]))
		}
		for _, a := range d.arguments {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, a[0], indent(wordwrap.WrapString(a[1], uint(helpWidth-width-4)), width+4))
		}
	}
	if fs != nil {
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		if len(flags) > 0 {
			b.WriteString("\nOptions:\n")
		}
		for _, f := range flags {
			b.WriteString("  -" + f.Name)
			if v := valueName(f); v != "" {
				b.WriteString(" " + v)
			}
			_, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(&b, "\n      %s\n", indent(wordwrap.WrapString(fmt.Sprintf("%s (default: %s)", usage, defaultText(f)), helpWidth-6), 6))
		}
	}
	writeExamples(&b, d.examples)
	io.WriteString(w, b.String())
}

// fromEnvironment names the options whose default is read from an
// environment variable.
var fromEnvironment = map[string]string{"env": config.EnvironmentVar}

// helpWidth is the width help text is wrapped to.
const helpWidth = 78

// indent indents every line of s but the first by n spaces.
func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

func writeExamples(b *strings.Builder, examples []string) {
	if len(examples) == 0 {
		return
	}
	b.WriteString("\nExamples:\n")
	for _, e := range examples {
		b.WriteString("  " + e + "\n")
	}
}

// takesValue reports whether a flag needs a value (every flag but a
// boolean one).
func takesValue(f *flag.Flag) bool {
	bf, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !bf.IsBoolFlag()
}

func valueName(f *flag.Flag) string {
	if !takesValue(f) {
		return ""
	}
	if v, ok := valueNames[f.Name]; ok {
		return v
	}
	name, _ := flag.UnquoteUsage(f)
	if name == "" {
		name = "value"
	}
	return strings.ToUpper(name)
}

func defaultText(f *flag.Flag) string {
	switch {
	case f.DefValue == "" && fromEnvironment[f.Name] != "":
		return "$" + fromEnvironment[f.Name]
	case f.DefValue == "" && takesValue(f):
		return "none"
	case f.DefValue == "":
		return "false"
	}
	return f.DefValue
}

// groupHelp answers a command group (gsd hosts, gsd sandbox) called
// without a known subcommand: its help, on stdout and with exit 0 when
// asked for, else on stderr as a usage error.
func groupHelp(env *cliEnv, group string, args []string) error {
	d := docs[group]
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: gsd %s <%s> [options]\n", group, strings.Join(d.subcommands, "|"))
	if d.text != "" {
		b.WriteString("\n" + wordwrap.WrapString(strings.TrimSpace(d.text), helpWidth) + "\n")
	}
	b.WriteString("\nCommands:\n")
	width := 0
	for _, s := range d.subcommands {
		width = max(width, len(s))
	}
	for _, s := range d.subcommands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, s, docs[group+" "+s].summary())
	}
	fmt.Fprintf(&b, "\nRun 'gsd help %s <command>' for a command's options and examples.\n", group)
	writeExamples(&b, d.examples)
	if len(args) > 0 && isHelpArg(args[0]) {
		io.WriteString(env.stdout, b.String())
		return nil
	}
	io.WriteString(env.stderr, b.String())
	if len(args) == 0 {
		return usageError{fmt.Errorf("gsd %s needs a command", group)}
	}
	return fmt.Errorf("unknown %s command %q", group, args[0])
}

func isHelpArg(a string) bool {
	return a == "-h" || a == "-help" || a == "--help" || a == "help"
}

// summary is the first sentence of a subcommand's text, for its group's
// list.
func (d commandDoc) summary() string {
	s := strings.TrimSpace(d.text)
	for _, end := range []string{". ", ": "} {
		if i := strings.Index(s, end); i >= 0 {
			s = s[:i]
		}
	}
	s = strings.TrimSuffix(strings.Join(strings.Fields(s), " "), ".")
	return s
}

func init() {
	register(command{name: "help", summary: "Show the help of gsd or of one of its commands", run: runHelp})
	document("help", commandDoc{args: "[COMMAND [SUBCOMMAND]]",
		text:      `Show what a command does, its arguments, every option with its default, and examples: the same as 'gsd COMMAND -h'.`,
		arguments: [][2]string{{"COMMAND", "a command, as 'gsd help' lists them; a group such as hosts takes a SUBCOMMAND"}},
		examples:  []string{"gsd help plan", "gsd help hosts check"}})
}

func runHelp(env *cliEnv, args []string) error {
	if len(args) == 0 || isHelpArg(args[0]) {
		usage(env.stdout)
		return nil
	}
	if c, ok := commands[args[0]]; !ok || c.hidden {
		usage(env.stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if err := dispatch(env, append(append([]string{}, args...), "-h")); err != nil && !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

// commandNames lists the commands a user types, in order.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
