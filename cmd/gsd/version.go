package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	register(command{name: "version", summary: "Print the gsd version", run: runVersion})
}

func runVersion(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "version", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(env.stdout, "gsd %s%s %s/%s %s\n", version, rev, runtime.GOOS, runtime.GOARCH, runtime.Version())
	return nil
}

// newFlagSet returns a flag set that reports to the command's stderr and
// leaves error handling to run.
func newFlagSet(env *cliEnv, name, argsHelp string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: gsd %s [options] %s\n\nOptions:\n", name, argsHelp)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, marking a bad command line as already reported
// (the flag package prints it with the usage).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}
