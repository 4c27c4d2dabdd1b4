package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/config"
)

// module writes a tiny Go module and returns its directory.
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.test/app\n\ngo 1.22\n"
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const helloMain = "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(\"hello\", version) }\n"

// countingGo returns a go command that records each subcommand it runs,
// so tests can tell a cache hit from a build.
func countingGo(t *testing.T) (string, func(sub string) int) {
	t.Helper()
	real, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "go")
	body := "#!/bin/sh\necho \"$1\" >> '" + logPath + "'\nexec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, func(sub string) int {
		b, _ := os.ReadFile(logPath)
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if l == sub {
				n++
			}
		}
		return n
	}
}

func appBuild(dir string) *config.Build {
	return &config.Build{Name: "app", Package: ".", Dir: dir, GOOS: "windows", GOARCH: "amd64"}
}

func fileSHA(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCachedByInputs(t *testing.T) {
	goCmd, calls := countingGo(t)
	dir := module(t, map[string]string{"main.go": helloMain})
	opts := Options{CacheDir: t.TempDir(), GoCommand: goCmd}
	b := appBuild(dir)

	first, err := Run(context.Background(), []*config.Build{b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	a := first["app"]
	if a.Cached || calls("build") != 1 {
		t.Fatalf("first run: cached=%v builds=%d", a.Cached, calls("build"))
	}
	if got := fileSHA(t, a.Path); got != a.SHA256 {
		t.Errorf("artifact hash %s does not match its file %s", a.SHA256, got)
	}

	second, err := Run(context.Background(), []*config.Build{b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !second["app"].Cached || calls("build") != 1 || second["app"].SHA256 != a.SHA256 {
		t.Errorf("unchanged inputs rebuilt: cached=%v builds=%d", second["app"].Cached, calls("build"))
	}

	// A changed source file, then changed ldflags, each rebuild.
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(strings.Replace(helloMain, "hello", "hi", 1)), 0o644)
	third, err := Run(context.Background(), []*config.Build{b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if third["app"].Cached || calls("build") != 2 || third["app"].SHA256 == a.SHA256 {
		t.Errorf("changed source not rebuilt: cached=%v builds=%d", third["app"].Cached, calls("build"))
	}
	b.LDFlags = "-X main.version=2"
	fourth, err := Run(context.Background(), []*config.Build{b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fourth["app"].Cached || calls("build") != 3 || fourth["app"].Key == third["app"].Key {
		t.Errorf("changed ldflags not rebuilt")
	}

	// A cache entry whose file was damaged is not trusted, whether its
	// size changed or only its bytes.
	damaged, _ := os.ReadFile(fourth["app"].Path)
	damaged[len(damaged)/2] ^= 0xff
	os.WriteFile(fourth["app"].Path, damaged, 0o644)
	fifth, err := Run(context.Background(), []*config.Build{b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fifth["app"].Cached || fileSHA(t, fifth["app"].Path) != fourth["app"].SHA256 {
		t.Errorf("a damaged cache entry was served")
	}
}

// Builds are reproducible: the same inputs in two caches give the same
// bytes, which is what lets a plan compare hashes with a host.
func TestReproducible(t *testing.T) {
	dir := module(t, map[string]string{"main.go": helloMain})
	a, err := Run(context.Background(), []*config.Build{appBuild(dir)}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), []*config.Build{appBuild(dir)}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if a["app"].SHA256 != b["app"].SHA256 {
		t.Errorf("two builds of the same inputs differ: %s vs %s", a["app"].SHA256, b["app"].SHA256)
	}
}

func TestFailuresReportedTogether(t *testing.T) {
	good := module(t, map[string]string{"main.go": helloMain})
	bad := module(t, map[string]string{"main.go": "package main\n\nfunc main() {\n\tundefinedThing()\n}\n"})
	missing := module(t, map[string]string{"main.go": helloMain})
	builds := []*config.Build{
		{Name: "good", Package: ".", Dir: good, GOOS: "windows", GOARCH: "amd64"},
		{Name: "bad", Package: ".", Dir: bad, GOOS: "windows", GOARCH: "amd64"},
		{Name: "missing", Package: "./cmd/nothere", Dir: missing, GOOS: "windows", GOARCH: "amd64"},
	}
	var events []Event
	cache := t.TempDir()
	arts, err := Run(context.Background(), builds, Options{CacheDir: cache, OnEvent: func(e Event) { events = append(events, e) }})
	if err == nil {
		t.Fatal("want an error")
	}
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error is %T, want *build.Error", err)
	}
	msg := err.Error()
	for _, want := range []string{`build "bad" failed`, "main.go:4:2: undefined: undefinedThing", `build "missing"`, "nothere"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if arts["good"] == nil || arts["good"].SHA256 == "" {
		t.Errorf("the good build was not kept")
	}
	failed := 0
	for _, e := range events {
		if e.Kind == "failed" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("failed events = %d, want 2 (%v)", failed, events)
	}
	// No half-written artifact is left in the cache.
	leftovers, _ := filepath.Glob(filepath.Join(cache, "*", "*", ".build-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestPrebuilt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tool.exe")
	os.WriteFile(p, []byte("MZ not really"), 0o644)
	a, err := Prebuilt(p)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != fileSHA(t, p) || a.Size != 13 {
		t.Errorf("prebuilt artifact = %+v", a)
	}
	if _, err := Prebuilt(filepath.Join(t.TempDir(), "gone.exe")); err == nil {
		t.Errorf("missing prebuilt binary accepted")
	}
}

// Moving an embedded file changes the binary, so it must change the key.
func TestEmbeddedFileMoveRebuilds(t *testing.T) {
	dir := module(t, map[string]string{
		"main.go":          "package main\n\nimport (\n\t\"embed\"\n\t\"fmt\"\n)\n\n//go:embed static\nvar static embed.FS\n\nfunc main() { e, _ := static.ReadDir(\"static/a\"); fmt.Println(len(e)) }\n",
		"static/a/x.txt":   "x",
		"static/b/keep.md": "k",
	})
	opts := Options{CacheDir: t.TempDir()}
	first, err := Run(context.Background(), []*config.Build{appBuild(dir)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "static/a/x.txt"), filepath.Join(dir, "static/b/x.txt")); err != nil {
		t.Fatal(err)
	}
	second, err := Run(context.Background(), []*config.Build{appBuild(dir)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second["app"].Cached || second["app"].Key == first["app"].Key {
		t.Errorf("moving an embedded file did not change the key")
	}
}
