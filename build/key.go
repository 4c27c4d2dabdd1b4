package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/config"
)

// keyVersion changes when the way keys are computed changes, so old cache
// entries are not mistaken for new ones.
const keyVersion = "gsd-build-key-1"

// listedPackage is what go list reports of one package in the build.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	CFiles     []string
	CXXFiles   []string
	HFiles     []string
	SFiles     []string
	SysoFiles  []string
	EmbedFiles []string
	Module     *struct {
		Path    string
		Version string
		Sum     string
		GoMod   string
		Main    bool
		Replace *struct {
			Path    string
			Version string
		}
	}
	Error *struct{ Err string }
}

// goEnvKeys are the toolchain settings that change what go build
// produces.
var goEnvKeys = []string{"GOVERSION", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GOARM64", "GO386", "GOTOOLCHAIN"}

// cgoEnvKeys matter too when cgo is on: another C compiler or flags make
// another binary.
var cgoEnvKeys = []string{"CC", "CXX", "AR", "PKG_CONFIG", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_FFLAGS", "CGO_LDFLAGS"}

// inputKey hashes everything the binary depends on: toolchain and its
// settings, the build's flags and environment, and the contents of every
// source file of every non-standard package it imports. Modules from the
// module cache are immutable, so their version and checksum stand for
// their files.
func inputKey(ctx context.Context, b *config.Build, goCmd string, env []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", keyVersion)
	keysToRead := goEnvKeys
	if b.CGO {
		keysToRead = append(append([]string(nil), goEnvKeys...), cgoEnvKeys...)
	}
	goEnv, err := run(ctx, b.Dir, env, goCmd, append([]string{"env", "-json"}, keysToRead...)...)
	if err != nil {
		return "", err
	}
	h.Write(goEnv)
	fmt.Fprintf(h, "goos=%s goarch=%s cgo=%v\ntags=%q\nldflags=%q\npackage=%q\n", b.GOOS, b.GOARCH, b.CGO, b.Tags, b.LDFlags, b.Package)
	keys := make([]string, 0, len(b.Env))
	for k := range b.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "env %s=%q\n", k, b.Env[k])
	}
	args := []string{"list", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,CgoFiles,CFiles,CXXFiles,HFiles,SFiles,SysoFiles,EmbedFiles,Module,Error"}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	args = append(args, b.Package)
	listed, err := run(ctx, b.Dir, env, goCmd, args...)
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(listed))
	seenGoMod := map[string]bool{}
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("reading go list output: %w", err)
		}
		if p.Error != nil {
			return "", fmt.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Standard {
			continue // the toolchain version covers the standard library
		}
		fmt.Fprintf(h, "pkg %s\n", p.ImportPath)
		if m := p.Module; m != nil && !m.Main && m.Replace == nil && m.Version != "" && m.Sum != "" {
			fmt.Fprintf(h, "module %s@%s %s\n", m.Path, m.Version, m.Sum)
			continue
		}
		if m := p.Module; m != nil && m.GoMod != "" && !seenGoMod[m.GoMod] {
			seenGoMod[m.GoMod] = true
			for _, f := range []string{m.GoMod, strings.TrimSuffix(m.GoMod, ".mod") + ".sum"} {
				if err := hashInto(h, filepath.Dir(f), filepath.Base(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return "", err
				}
			}
		}
		files := [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.HFiles, p.SFiles, p.SysoFiles, p.EmbedFiles}
		for _, group := range files {
			for _, f := range group {
				if err := hashInto(h, p.Dir, f); err != nil {
					return "", err
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashInto adds a file to the key under its path relative to its package
// (embedded files live in subdirectories, and moving one changes the
// binary) and its length, so names and contents cannot run together.
func hashInto(h io.Writer, dir, rel string) error {
	f, err := os.Open(filepath.Join(dir, rel))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "file %q %d\n", filepath.ToSlash(rel), st.Size())
	_, err = io.Copy(h, f)
	return err
}

// commandError keeps a failed command's output for the user.
type commandError struct {
	err    error
	output string
}

func (e *commandError) Error() string { return e.err.Error() }

func outputOf(err error) string {
	var ce *commandError
	if errors.As(err, &ce) {
		return ce.output
	}
	return ""
}

func run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &commandError{err: fmt.Errorf("%s %s: %w", name, args[0], err), output: stderr.String()}
	}
	return stdout.Bytes(), nil
}
