package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
)

// BenchmarkNoOpPlan times gsd plan when nothing changes, over 1, 5 and 20
// sandbox hosts, interleaved in one run so machine noise hits all alike,
// and reports 20 hosts ÷ 1 host (target ≤ 1.5: hosts are read in
// parallel). Run with make bench-plan; it starts 20 sandbox hosts.
func BenchmarkNoOpPlan(b *testing.B) {
	if os.Getenv("GSD_E2E") != "1" {
		b.Skip("set GSD_E2E=1 (make bench-plan) to start sandbox hosts")
	}
	sandboxtest.RequireWine(b)
	repo, _ := filepath.Abs("../..")
	bin := b.TempDir()
	mustBuild := func(out string, env []string, pkg string) {
		if err := goBuildErr(out, env, pkg); err != nil {
			b.Fatal(err)
		}
	}
	mustBuild(filepath.Join(bin, "gsd"), nil, ".")
	mustBuild(filepath.Join(bin, "gsd-agent.exe"), []string{"GOOS=windows", "GOARCH=amd64"}, "../gsd-agent")
	dir := b.TempDir()
	run := func(args ...string) {
		if out, err := runGsd(filepath.Join(bin, "gsd"), dir, []string{"GSD_AGENT_EXE=" + filepath.Join(bin, "gsd-agent.exe"), "GSD_CACHE_DIR=" + filepath.Join(bin, "cache"), "NO_COLOR=1"}, args...); err != nil {
			b.Fatalf("gsd %v: %v\n%s", args, err, out)
		}
	}
	run("sandbox", "up", "-n", "20")
	defer run("sandbox", "down")
	src := fmt.Sprintf(`
build "hello" {
  package = "./examples/services/hello"
  dir     = %q
}
service "hello" {
  hosts  = { sandbox = "true" }
  binary = build.hello
  args   = ["-listen", "127.0.0.1:8080"]
}
`, repo)
	if err := os.WriteFile(filepath.Join(dir, "hello.hcl"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	run("apply", "-auto-approve", "-parallelism", "20")

	hostArgs := func(n int) []string {
		args := []string{"plan", "-detailed-exitcode", "-parallelism", "20"}
		for i := 1; i <= n; i++ {
			args = append(args, "-host", fmt.Sprintf("sandbox%d", i))
		}
		return args
	}
	var t1, t5, t20 time.Duration
	for b.Loop() {
		for _, c := range []struct {
			n   int
			sum *time.Duration
		}{{1, &t1}, {5, &t5}, {20, &t20}} {
			start := time.Now()
			run(hostArgs(c.n)...)
			*c.sum += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(t1.Milliseconds())/n, "ms/1host")
	b.ReportMetric(float64(t5.Milliseconds())/n, "ms/5hosts")
	b.ReportMetric(float64(t20.Milliseconds())/n, "ms/20hosts")
	b.ReportMetric(float64(t20)/float64(t1), "ratio_20/1")
}
