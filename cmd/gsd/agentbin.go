package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
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
// the file named by GSD_AGENT_EXE; the one embedded in a release build
// (make build, make release); one built with the local Go toolchain from
// this module's source, found beside the running binary or above the
// current directory (a checkout), or else in the module cache at the
// version this gsd was installed at (go install ...@VERSION). Builds are
// cached like any build, so only the first plan pays for one.
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
	root, err := agentSource(ctx)
	if err != nil {
		return providers.Agent{}, err
	}
	arts, err := build.Run(ctx, []*config.Build{agentBuild(root)}, build.Options{})
	if err != nil {
		return providers.Agent{}, fmt.Errorf("building the agent: %w", err)
	}
	return providers.AgentFromFile(arts["gsd-agent"].Path)
}

// agentBuild is how the agent is built from source; make build and the
// release build use the same flags, so all three make the same program.
func agentBuild(root string) *config.Build {
	return &config.Build{Name: "gsd-agent", Package: "./cmd/gsd-agent", Dir: root, GOOS: "windows", GOARCH: "amd64", LDFlags: "-s -w"}
}

// agentSource is the directory of this module's source to build the agent
// from: a checkout, or the module cache's copy of the version this gsd was
// installed at.
func agentSource(ctx context.Context) (string, error) {
	// A gsd installed at a version builds that version's agent, even when
	// run inside a checkout of another.
	if bi, ok := debug.ReadBuildInfo(); ok && installedVersion(bi) {
		return moduleCacheDir(ctx, bi.Main)
	}
	if root, ok := checkoutRoot(); ok {
		return root, nil
	}
	return "", errors.New("no gsd-agent.exe: this gsd has none embedded, its source is not beside it, and it was not installed with go install at a version; " +
		"use a release build or make build, install it with go install " + modulePath + "/cmd/gsd@VERSION, or set GSD_AGENT_EXE to a gsd-agent.exe")
}

// installedVersion reports whether this gsd was built from this module at
// a version (go install ...@VERSION), not from a checkout.
func installedVersion(bi *debug.BuildInfo) bool {
	return bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)"
}

// moduleCacheDir downloads (or finds) the module this gsd was built from
// in the module cache, with the user's own GOPROXY and GOFLAGS, and checks
// it is the very source this binary was built from.
func moduleCacheDir(ctx context.Context, m debug.Module) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", m.Path+"@"+m.Version)
	// Outside any module: the current directory may hold another one.
	cmd.Dir = os.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var got struct {
		Dir, Sum, Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || runErr != nil && got.Error == "" {
		return "", fmt.Errorf("building the agent of gsd %s needs its source: go mod download %s@%s: %v %s", m.Version, m.Path, m.Version, runErr, strings.TrimSpace(stderr.String()))
	}
	if got.Error != "" {
		return "", fmt.Errorf("building the agent of gsd %s needs its source: go mod download: %s", m.Version, got.Error)
	}
	if m.Sum != "" && got.Sum != m.Sum {
		return "", fmt.Errorf("the module cache holds %s@%s with checksum %s, but this gsd was built from %s; refusing to build its agent from other source", m.Path, m.Version, got.Sum, m.Sum)
	}
	return got.Dir, nil
}

// checkoutRoot finds gsd's own source: beside the running binary (a
// checkout's bin/gsd) or above the current directory.
func checkoutRoot() (string, bool) {
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
				return d, true
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", false
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
