package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers"
)

// modulePath is this module's path, which the agent is built from.
const modulePath = "github.com/gsd-deploy/gsd"

// embeddedAgent holds gsd-agent.exe in release builds (build tag
// embedagent); it is empty otherwise.
var embeddedAgent []byte

// agentBinary finds the gsd-agent.exe to install on hosts, in this order:
// the file named by GSD_AGENT_EXE; the one embedded in a release build;
// one built from this module's source with the local Go toolchain (cached
// like any build, so only the first plan pays for it).
func agentBinary(ctx context.Context, env *cliEnv) (providers.Agent, error) {
	if p := env.getenv("GSD_AGENT_EXE"); p != "" {
		a, err := providers.AgentFromFile(p)
		if err != nil {
			return providers.Agent{}, fmt.Errorf("GSD_AGENT_EXE: %w", err)
		}
		return a, nil
	}
	if len(embeddedAgent) > 0 {
		return providers.AgentFromBytes(embeddedAgent), nil
	}
	root, err := moduleRoot()
	if err != nil {
		return providers.Agent{}, err
	}
	arts, err := build.Run(ctx, []*config.Build{{
		Name: "gsd-agent", Package: "./cmd/gsd-agent", Dir: root, GOOS: "windows", GOARCH: "amd64",
		LDFlags: "-s -w",
	}}, build.Options{})
	if err != nil {
		return providers.Agent{}, fmt.Errorf("building the agent: %w", err)
	}
	return providers.AgentFromFile(arts["gsd-agent"].Path)
}

// moduleRoot finds gsd's own source: beside the running binary (a
// checkout's bin/gsd) or above the current directory.
func moduleRoot() (string, error) {
	var starts []string
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if isThisModule(filepath.Join(d, "go.mod")) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("no gsd-agent.exe: this gsd has none embedded and its source is not beside it; set GSD_AGENT_EXE to a gsd-agent.exe, or use a release build")
}

func isThisModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == modulePath
		}
	}
	return false
}
