package agentbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Variant names a build.
type Variant string

// The two builds: the ordinary one, and one without symbol tables, whose
// content hash differs.
const (
	Current Variant = "current"
	Other   Variant = "other"
)

var (
	mu    sync.Mutex
	built = map[Variant]string{}
	dirs  []string
)

// Cleanup removes every build; call it from TestMain.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	dirs, built = nil, map[Variant]string{}
}

// Path builds the variant once per test binary and returns its path.
func Path(t testing.TB, v Variant) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[v]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "gsd-agent-build-")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, dir)
	out := filepath.Join(dir, "gsd-agent.exe")
	args := []string{"build", "-buildvcs=false", "-o", out}
	if v == Other {
		args = append(args, "-ldflags=-s -w")
	}
	args = append(args, "github.com/gsd-deploy/gsd/cmd/gsd-agent")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v: %s", err, strings.TrimSpace(string(b)))
	}
	built[v] = out
	return out
}
