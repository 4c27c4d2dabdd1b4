package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
	// Wall time, and gsd's own CPU time: the sandbox hosts are Wine
	// processes on this same machine, so the wall time also carries their
	// work, which real hosts do on their own CPUs.
	var t1, t5, t20, cpu1, cpu20, busy1, busy20 time.Duration
	env := append(os.Environ(), "GSD_AGENT_EXE="+filepath.Join(bin, "gsd-agent.exe"), "GSD_CACHE_DIR="+filepath.Join(bin, "cache"), "NO_COLOR=1")
	for b.Loop() {
		for _, c := range []struct {
			n              int
			sum, cpu, busy *time.Duration
		}{{1, &t1, &cpu1, &busy1}, {5, &t5, nil, nil}, {20, &t20, &cpu20, &busy20}} {
			cmd := exec.Command(filepath.Join(bin, "gsd"), hostArgs(c.n)...)
			cmd.Dir, cmd.Env = dir, env
			before := machineBusy(b)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("plan over %d hosts: %v\n%s", c.n, err, out)
			}
			*c.sum += time.Since(start)
			if c.cpu != nil {
				*c.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				*c.busy += machineBusy(b) - before
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(t1.Milliseconds())/n, "ms/1host")
	b.ReportMetric(float64(t5.Milliseconds())/n, "ms/5hosts")
	b.ReportMetric(float64(t20.Milliseconds())/n, "ms/20hosts")
	b.ReportMetric(float64(t20)/float64(t1), "ratio_20/1")
	b.ReportMetric(float64(cpu1.Milliseconds())/n, "gsd-cpu-ms/1host")
	b.ReportMetric(float64(cpu20.Milliseconds())/n, "gsd-cpu-ms/20hosts")
	// Everything else the machine did meanwhile is, on an otherwise idle
	// machine, the sandbox hosts' work: their Wine processes, wineservers
	// and WinRM servers. busy-% near 100 means the plan waited for CPU.
	b.ReportMetric(float64((busy1-cpu1).Milliseconds())/n, "host-cpu-ms/1host")
	b.ReportMetric(float64((busy20-cpu20).Milliseconds())/n, "host-cpu-ms/20hosts")
	b.ReportMetric(100*float64(busy20)/(float64(t20)*float64(runtime.NumCPU())), "busy-%/20hosts")
}

// machineBusy is the CPU time all processes on the machine have used
// since boot, from /proc/stat (every state but idle and iowait).
func machineBusy(b *testing.B) time.Duration {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		b.Fatalf("unexpected /proc/stat: %q", line)
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal; guest time is
	// already counted in user.
	for i, f := range fields[1:min(len(fields), 9)] {
		if i == 3 || i == 4 {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("unexpected /proc/stat: %q", line)
		}
		ticks += v
	}
	// USER_HZ is 100 on every Linux this runs on.
	return time.Duration(ticks) * 10 * time.Millisecond
}
