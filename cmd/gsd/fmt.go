package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
	"github.com/gsd-deploy/gsd/config"
	"github.com/hashicorp/hcl/v2"
)

func init() {
	register(command{name: "fmt", summary: "Rewrite configuration files in canonical layout", run: runFmt})
}

func runFmt(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "fmt", "[PATH...] (- for standard input)")
	check := fs.Bool("check", false, "change nothing; list files that need formatting and exit 1 if any")
	diff := fs.Bool("diff", false, "show the changes as a unified diff")
	recursive := fs.Bool("recursive", false, "also format files in subdirectories")
	noColor := fs.Bool("no-color", false, "plain output without colours")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	color := useColor(env.errIsTerminal, *noColor, env)
	paths := fs.Args()
	if len(paths) == 1 && paths[0] == "-" {
		src, err := io.ReadAll(env.stdin)
		if err != nil {
			return err
		}
		out, diags := config.Format("<stdin>", src)
		if diags.HasErrors() {
			return reportDiagnostics(env, map[string]*hcl.File{"<stdin>": {Bytes: src}}, diags, color)
		}
		changed := !bytes.Equal(src, out)
		switch {
		case *diff:
			if changed {
				fmt.Fprint(env.stdout, udiff.Unified("a/<stdin>", "b/<stdin>", string(src), string(out)))
			}
		case !*check:
			if _, err := env.stdout.Write(out); err != nil {
				return err
			}
		}
		if *check && changed {
			return errReported
		}
		return nil
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	files, err := formatTargets(paths, *recursive)
	if err != nil {
		return err
	}
	unformatted := false
	var allDiags hcl.Diagnostics
	sources := map[string]*hcl.File{}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		out, diags := config.Format(name, src)
		if diags.HasErrors() {
			allDiags = append(allDiags, diags...)
			sources[name] = &hcl.File{Bytes: src}
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		unformatted = true
		fmt.Fprintln(env.stdout, name)
		if *diff {
			fmt.Fprint(env.stdout, udiff.Unified("a/"+name, "b/"+name, string(src), string(out)))
		}
		if !*check {
			if err := writeFileAtomic(name, out); err != nil {
				return err
			}
		}
	}
	if len(allDiags) > 0 {
		return reportDiagnostics(env, sources, allDiags, color)
	}
	if *check && unformatted {
		return errReported
	}
	return nil
}

// formatTargets expands directories into their configuration and
// variable files.
func formatTargets(paths []string, recursive bool) ([]string, error) {
	var out []string
	isTarget := func(n string) bool {
		return strings.HasSuffix(n, config.ConfigExt) || strings.HasSuffix(n, config.VarsExt)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && (!recursive || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if isTarget(d.Name()) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// writeFileAtomic replaces name with data without ever leaving a
// half-written file, keeping the original's permissions. A symbolic link
// is followed, so the shared file it points at is what gets formatted.
func writeFileAtomic(name string, data []byte) error {
	if real, err := filepath.EvalSymlinks(name); err == nil {
		name = real
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(name); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
