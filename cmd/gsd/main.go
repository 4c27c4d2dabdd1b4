package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
)

// command is one gsd subcommand. Each file in this package registers its
// commands from init, so adding a command never means editing a switch.
type command struct {
	name    string
	summary string
	run     func(env *cliEnv, args []string) error
	// hidden commands are not listed: what the completion scripts call.
	hidden bool
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("gsd: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// cliEnv is what a command may touch of the outside world; tests fill it
// with buffers.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// isTerminal and errIsTerminal report whether stdout and stderr are
	// interactive terminals; colour is decided per stream.
	isTerminal    bool
	errIsTerminal bool
	// onFlagSet, when set, sees every flag set a command makes: how help
	// and shell completion learn a command's options without running it.
	onFlagSet func(name string, fs *flag.FlagSet)
}

// exitError carries a specific exit code up to main. Commands return it
// when the code is not simply "1 on error".
type exitError struct {
	code int
	err  error // may be nil when the command already reported everything
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// errReported means the command has already shown its problems (for
// example as diagnostics); main only sets the exit code.
var errReported = &exitError{code: 1}

func main() {
	env := &cliEnv{
		stdin:         os.Stdin,
		stdout:        os.Stdout,
		stderr:        os.Stderr,
		getenv:        os.Getenv,
		isTerminal:    isTerminal(os.Stdout),
		errIsTerminal: isTerminal(os.Stderr),
	}
	tuneGC()
	stop := profile(os.Getenv("GSD_CPUPROFILE"), os.Getenv("GSD_MEMPROFILE"))
	code := run(env, os.Args[1:])
	stop()
	os.Exit(code)
}

// tuneGC trades memory for CPU, as a short-lived command can: gsd's heap
// is small (tens of MB for a thousand hosts), and at Go's default of
// GOGC=100 a fleet-wide plan spent a sixth of its CPU collecting it.
// The soft limit makes the collector work harder again before the heap
// nears it. GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// profile writes a CPU profile of the whole run to cpu, and the memory
// allocated during it to mem, when set: how gsd's own cost per host is
// measured (make bench-scale).
func profile(cpu, mem string) (stop func()) {
	var stops []func()
	if f, err := os.Create(cpu); cpu != "" && err == nil {
		if pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		} else {
			f.Close()
		}
	}
	if mem != "" {
		stops = append(stops, func() {
			if f, err := os.Create(mem); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// run is the only place that decides exit codes: 0 ok, 1 error, and
// whatever a command asked for through an exitError (2 for
// -detailed-exitcode with changes present).
func run(env *cliEnv, args []string) int {
	err := dispatch(env, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if isUsageError(err) {
		// The flag package has already printed the problem and usage.
		return 1
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(env.stderr, "Error: %s\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(env.stderr, "Error: %s\n", err)
	return 1
}

func dispatch(env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		usage(env.stdout)
		return nil
	}
	if args[0] == "-v" || args[0] == "-version" || args[0] == "--version" {
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(env.stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(env, args[1:])
}

func usage(w io.Writer) {
	names := commandNames()
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	var b strings.Builder
	b.WriteString("Usage: gsd <command> [options] [arguments]\n\ngsd deploys Go services to Windows hosts from HCL files.\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	b.WriteString("\nRun 'gsd help <command>' (or 'gsd <command> -h') for what a command does, its options and examples.\n")
	io.WriteString(w, b.String())
}

// usageError marks a bad command line that the flag package has already
// explained.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func isUsageError(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}
