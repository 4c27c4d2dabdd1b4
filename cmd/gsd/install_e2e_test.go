package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// installVersion is the version the go install test publishes this
// checkout at, in a module proxy of its own.
const installVersion = "v1.99.0-e2e"

// TestInstallEndToEnd gets gsd the three ways a user does (go install
// through a module proxy, a copied bin/gsd from make build, an unpacked
// release archive), each into an empty folder outside the checkout, and
// plans and applies with it against a sandbox host. None is told where an
// agent is (no GSD_AGENT_EXE): each must find or build its own.
func TestInstallEndToEnd(t *testing.T) {
	l := startRolloutLab(t, 1)
	// The service is a prebuilt hello.exe, so nothing in the folder
	// points back at the checkout.
	hello := filepath.Join(t.TempDir(), "hello.exe")
	goBuild(t, hello, []string{"GOOS=windows", "GOARCH=amd64"}, "../../examples/services/hello")
	env := withoutEnv(os.Environ(), "GSD_AGENT_EXE")
	env = append(env, "GSD_CACHE_DIR="+t.TempDir(), "NO_COLOR=1")

	// use runs gsd from an empty folder: version, plan, apply of release
	// label, plan again with nothing left to do. It returns gsd version's
	// output.
	use := func(t *testing.T, gsd string, env []string, label string) string {
		dir := l.caseDir(t)
		exe, err := os.ReadFile(hello)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "hello.exe"), exe, 0o755)
		writeHCL(t, dir, fmt.Sprintf(`
service "hi" {
  hosts   = { sandbox = "true" }
  binary  = "hello.exe"
  version = %q
  args    = ["-listen", ":8191"]
}
`, label))
		run := func(want int, args ...string) string {
			t.Helper()
			cmd := exec.Command(gsd, args...)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("gsd %v: %v", args, err)
			}
			if code != want {
				t.Fatalf("gsd %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
			}
			return string(out)
		}
		version := run(0, "version")
		start := time.Now()
		out := run(2, "plan", "-detailed-exitcode")
		t.Logf("%s\nfirst plan (reads the host, installs its agent): %s", version, time.Since(start).Round(time.Millisecond))
		if !strings.Contains(out, "service.hi") {
			t.Errorf("plan:\n%s", out)
		}
		out = run(0, "apply", "-auto-approve")
		if !strings.Contains(out, "service.hi: ") || !strings.Contains(out, "complete") {
			t.Errorf("apply:\n%s", out)
		}
		if out := run(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
			t.Errorf("plan after apply:\n%s", out)
		}
		if code, body, err := l.get(0, 8191, "/"); err != nil || code != 200 || !strings.Contains(body, "hello") {
			t.Errorf("the service answers %d %q %v", code, body, err)
		}
		return version
	}

	t.Run("GoInstall", func(t *testing.T) {
		repo := l.repo
		proxy := moduleProxy(t, repo, installVersion)
		modcache := t.TempDir()
		t.Cleanup(func() {
			// The module cache's files are read-only; go clean removes them.
			cmd := exec.Command("go", "clean", "-modcache")
			cmd.Env = append(os.Environ(), "GOMODCACHE="+modcache)
			cmd.Run()
		})
		realCache := goEnv(t, "GOMODCACHE")
		// This module comes from its own file proxy and every dependency
		// from the machine's module cache (itself laid out as a proxy), so
		// no module is downloaded; the checksum database of the
		// dependencies is asked through the machine's own module proxy,
		// the only one that serves it (a file proxy cannot). The module
		// itself is not in the checksum database. GOFLAGS=-mod=mod as a
		// user with that in their environment has it.
		goEnv := append(withoutEnv(env, "GOFLAGS", "GOPROXY", "GOMODCACHE", "GONOSUMDB", "GOBIN"),
			"GOPROXY=file://"+proxy+",file://"+filepath.Join(realCache, "cache", "download")+","+goEnv(t, "GOPROXY"),
			"GOMODCACHE="+modcache, "GOFLAGS=-mod=mod", "GONOSUMDB="+modulePath, "GOTOOLCHAIN=local",
			"GOBIN="+filepath.Join(t.TempDir(), "bin"))
		empty := t.TempDir()
		cmd := exec.Command("go", "install", modulePath+"/cmd/gsd@"+installVersion)
		cmd.Dir, cmd.Env = empty, goEnv
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go install: %v\n%s", err, out)
		}
		t.Logf("go install through the file proxy: %s", time.Since(start).Round(time.Millisecond))
		gsd := filepath.Join(envValue(goEnv, "GOBIN"), "gsd")
		version := use(t, gsd, goEnv, "1.0.0")
		if !strings.HasPrefix(version, "gsd "+installVersion+" ") || !strings.Contains(version, "agent built from source") {
			t.Errorf("gsd version: %q", version)
		}
	})

	t.Run("CopiedBinary", func(t *testing.T) {
		built := filepath.Join(t.TempDir(), "gsd")
		cmd := exec.Command("make", "-s", "build", "GSD_BIN="+built, "VERSION=v0.0.0-copied")
		cmd.Dir = l.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		gsd := filepath.Join(t.TempDir(), "gsd")
		copyFile(t, built, gsd)
		version := use(t, gsd, env, "2.0.0")
		if !strings.HasPrefix(version, "gsd v0.0.0-copied ") || !regexp.MustCompile(`agent [0-9a-f]{64} \(embedded\)`).MatchString(version) {
			t.Errorf("gsd version: %q", version)
		}
	})

	t.Run("ReleaseArchive", func(t *testing.T) {
		goreleaser := os.Getenv("GSD_GORELEASER")
		if goreleaser == "" {
			sandboxtest.Missing(t, "GSD_GORELEASER, the GoReleaser binary (make test-e2e sets it)")
		}
		dist := t.TempDir()
		archive := releaseArchive(t, goreleaser, l.repo, dist)
		unpacked := t.TempDir()
		untar(t, archive, unpacked)
		sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sums), sha256File(t, archive)+"  "+filepath.Base(archive)) {
			t.Errorf("SHA256SUMS does not hold %s's hash:\n%s", filepath.Base(archive), sums)
		}
		version := use(t, filepath.Join(unpacked, "gsd"), env, "3.0.0")
		if !regexp.MustCompile(`^gsd \S*snapshot \(commit [0-9a-f]{12}\) linux/amd64 .*\nagent [0-9a-f]{64} \(embedded\)`).MatchString(version) {
			t.Errorf("gsd version: %q", version)
		}
	})
}

// moduleProxy lays out a file-system module proxy holding this checkout
// (its committed and untracked, not ignored, files, as a commit would
// hold them) as modulePath@version, zipped with golang.org/x/mod/zip.
func moduleProxy(t *testing.T, repo, version string) string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	cmd.Dir = repo
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []modzip.File
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		if st, err := os.Lstat(filepath.Join(repo, name)); err == nil && st.Mode().IsRegular() {
			files = append(files, repoFile{repo: repo, name: name, info: st})
		}
	}
	proxy := t.TempDir()
	dir := filepath.Join(proxy, modulePath, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modzip.Create(f, module.Version{Path: modulePath, Version: version}, files); err != nil {
		t.Fatal(err)
	}
	f.Close()
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, version+".mod"), gomod, 0o644)
	os.WriteFile(filepath.Join(dir, version+".info"), fmt.Appendf(nil, `{"Version":%q,"Time":%q}`, version, time.Now().UTC().Format(time.RFC3339)), 0o644)
	os.WriteFile(filepath.Join(dir, "list"), []byte(version+"\n"), 0o644)
	return proxy
}

// repoFile is a file of the checkout, as x/mod/zip reads one.
type repoFile struct {
	repo, name string
	info       os.FileInfo
}

func (f repoFile) Path() string                 { return f.name }
func (f repoFile) Lstat() (os.FileInfo, error)  { return f.info, nil }
func (f repoFile) Open() (io.ReadCloser, error) { return os.Open(filepath.Join(f.repo, f.name)) }

// releaseArchive runs GoReleaser with the checked-in configuration, for
// linux/amd64 only (the one this machine runs), into dist, and returns
// the archive.
func releaseArchive(t *testing.T, goreleaser, repo, dist string) string {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(repo, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	one := strings.NewReplacer("goos: [linux, darwin, windows]", "goos: [linux]", "goarch: [amd64, arm64]", "goarch: [amd64]").Replace(string(cfg))
	if one == string(cfg) {
		t.Fatal(".goreleaser.yaml no longer lists its targets as this test expects")
	}
	path := filepath.Join(t.TempDir(), "goreleaser.yaml")
	os.WriteFile(path, []byte(one+"\ndist: "+dist+"\n"), 0o644)
	cmd := exec.Command(goreleaser, "release", "--snapshot", "--clean", "--config", path)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GSD_COMMIT="+gitHead(t, repo))
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("goreleaser: %v\n%s", err, out)
	}
	t.Logf("goreleaser, linux/amd64: %s", time.Since(start).Round(time.Millisecond))
	archives, _ := filepath.Glob(filepath.Join(dist, "gsd_*_linux_amd64.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("archives in %s: %v", dist, archives)
	}
	return archives[0]
}

func gitHead(t *testing.T, repo string) string {
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "..") {
			continue
		}
		out := filepath.Join(dir, h.Name)
		os.MkdirAll(filepath.Dir(out), 0o755)
		w, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode)&0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}

func sha256File(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func goEnv(t *testing.T, key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// withoutEnv is env without the named variables.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
