package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set by release builds with -ldflags "-X
// main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func init() {
	register(command{name: "version", summary: "Print the gsd version, its commit and its agent", run: runVersion})
}

func runVersion(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "version", "")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, versionLine())
	return nil
}

// versionLine names this gsd: its version, the commit it was built from,
// its platform and toolchain, and the agent it installs on hosts.
func versionLine() string {
	v, rev := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && installedVersion(bi) {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	line := "gsd " + v
	if rev != "" {
		line += " (commit " + rev[:min(12, len(rev))] + ")"
	}
	line += fmt.Sprintf(" %s/%s %s\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	if len(embeddedAgent) > 0 {
		sum := sha256.Sum256(embeddedAgent)
		line += "agent " + hex.EncodeToString(sum[:]) + " (embedded)"
	} else {
		line += "agent built from source on first use (GSD_AGENT_EXE overrides)"
	}
	return line
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
