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
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/gsd-deploy/gsd/config"
	"golang.org/x/sync/errgroup"
)

// Artifact is a built (or prebuilt) executable, identified by its hash;
// the plan compares SHA256 with what a host runs.
type Artifact struct {
	Build  string `json:"build"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Key is the hash of every input of the build; equal keys mean the
	// same binary, so the build is skipped.
	Key    string `json:"key"`
	Cached bool   `json:"-"`
}

// Event reports a build's progress; the CLI renders it.
type Event struct {
	Build string
	Kind  string // "start", "cached", "done" or "failed"
}

// Options configure Run. The zero value builds with the go command on
// PATH into the user's cache directory.
type Options struct {
	CacheDir    string
	Parallelism int
	GoCommand   string
	Environ     []string
	OnEvent     func(Event)
}

// Error is a failed build, carrying the compiler's own output.
type Error struct {
	Build  string
	Output string
	Err    error
}

func (e *Error) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("build %q: %v", e.Build, e.Err)
	}
	return fmt.Sprintf("build %q failed:\n%s", e.Build, out)
}

func (e *Error) Unwrap() error { return e.Err }

// DefaultCacheDir is where artifacts are kept unless Options say
// otherwise.
func DefaultCacheDir() string {
	if d := os.Getenv("GSD_CACHE_DIR"); d != "" {
		return filepath.Join(d, "builds")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "gsd", "builds")
}

// Run builds every build block in parallel and returns the artifacts by
// build name. Builds whose inputs are unchanged are served from the cache
// without running the compiler. All failures are reported together.
func Run(ctx context.Context, builds []*config.Build, opts Options) (map[string]*Artifact, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.GoCommand == "" {
		opts.GoCommand = "go"
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	var (
		mu   sync.Mutex
		out  = map[string]*Artifact{}
		errs []error
	)
	emit := func(name, kind string) {
		if opts.OnEvent != nil {
			mu.Lock()
			opts.OnEvent(Event{Build: name, Kind: kind})
			mu.Unlock()
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallelism)
	for _, b := range builds {
		g.Go(func() error {
			a, err := buildOne(ctx, b, opts, emit)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return nil // keep building the others: report every failure at once
			}
			out[b.Name] = a
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return out, errors.Join(errs...)
	}
	return out, nil
}

func buildEnv(b *config.Build, base []string) []string {
	env := make([]string, 0, len(base)+len(b.Env)+3)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "GOOS" || k == "GOARCH" || k == "CGO_ENABLED" {
			continue
		}
		env = append(env, kv)
	}
	cgo := "0"
	if b.CGO {
		cgo = "1"
	}
	env = append(env, "GOOS="+b.GOOS, "GOARCH="+b.GOARCH, "CGO_ENABLED="+cgo)
	keys := make([]string, 0, len(b.Env))
	for k := range b.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+b.Env[k])
	}
	return env
}

func buildOne(ctx context.Context, b *config.Build, opts Options, emit func(string, string)) (*Artifact, error) {
	env := buildEnv(b, opts.Environ)
	key, err := inputKey(ctx, b, opts.GoCommand, env)
	if err != nil {
		emit(b.Name, "failed")
		return nil, &Error{Build: b.Name, Err: err, Output: outputOf(err)}
	}
	dir := filepath.Join(opts.CacheDir, key[:2], key)
	if a, ok := readCached(dir, b.Name); ok {
		a.Cached = true
		emit(b.Name, "cached")
		return a, nil
	}
	emit(b.Name, "start")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &Error{Build: b.Name, Err: err}
	}
	// Build into a temporary name and rename into place: a build killed
	// half way never leaves a file that looks like an artifact.
	tmp, err := os.CreateTemp(dir, ".build-*.exe")
	if err != nil {
		return nil, &Error{Build: b.Name, Err: err}
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", tmp.Name()}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	if b.LDFlags != "" {
		args = append(args, "-ldflags", b.LDFlags)
	}
	args = append(args, b.Package)
	cmd := exec.CommandContext(ctx, opts.GoCommand, args...)
	cmd.Dir = b.Dir
	cmd.Env = env
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		emit(b.Name, "failed")
		return nil, &Error{Build: b.Name, Output: output.String(), Err: err}
	}
	a, err := hashFile(tmp.Name())
	if err != nil {
		return nil, &Error{Build: b.Name, Err: err}
	}
	a.Build, a.Key = b.Name, key
	final := filepath.Join(dir, b.Name+".exe")
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, &Error{Build: b.Name, Err: err}
	}
	a.Path = final
	meta, _ := json.Marshal(a)
	if err := writeAtomic(filepath.Join(dir, b.Name+".json"), meta); err != nil {
		return nil, &Error{Build: b.Name, Err: err}
	}
	emit(b.Name, "done")
	return a, nil
}

// readCached returns the artifact recorded in dir if the file is still
// there with the recorded hash; anything else is a miss. The file is
// hashed again, which costs far less than a build: a cache entry damaged
// on disk must never put a wrong hash into a plan.
func readCached(dir, name string) (*Artifact, bool) {
	meta, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, false
	}
	var a Artifact
	if json.Unmarshal(meta, &a) != nil {
		return nil, false
	}
	path := filepath.Join(dir, name+".exe")
	now, err := hashFile(path)
	if err != nil || now.Size != a.Size || now.SHA256 != a.SHA256 {
		return nil, false
	}
	a.Path = path
	return &a, true
}

func hashFile(path string) (*Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &Artifact{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// Prebuilt describes a prebuilt .exe named by a service's binary path.
func Prebuilt(path string) (*Artifact, error) {
	a, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	a.Path, a.Key = path, a.SHA256
	return a, nil
}

func writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
