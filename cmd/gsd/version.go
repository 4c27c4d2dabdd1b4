package main

import (
	"crypto/sha256"
	"encoding/hex"
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
	v, rev := versionName(), commit
	if bi, ok := debug.ReadBuildInfo(); ok {
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

// versionName is this gsd's version: the one a release build was given,
// the one go install built, or "dev".
func versionName() string {
	if bi, ok := debug.ReadBuildInfo(); ok && version == "dev" && installedVersion(bi) {
		return bi.Main.Version
	}
	return version
}
