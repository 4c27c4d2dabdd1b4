package scale

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run is one gsd run's cost, as the kernel accounts it for that process.
type run struct {
	wall, cpu time.Duration
	rssMB     float64
	threads   int // the most OS threads seen at once
	out       string
}

func gsd(tb testing.TB, bin, dir string, env []string, want int, args ...string) run {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Start()
	// Peak RSS is the process's own high-water mark (VmHWM), sampled until
	// it exits: the kernel's rusage maxrss of a child counts the parent's
	// RSS at fork, which here is the whole simulated fleet's.
	type peak struct{ threads, hwmKB int }
	var most peak
	if err == nil {
		stop := make(chan struct{})
		sampled := make(chan peak)
		go func() {
			var most peak
			for {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
					for _, line := range strings.Split(string(b), "\n") {
						if n, ok := strings.CutPrefix(line, "Threads:"); ok {
							var t int
							fmt.Sscan(n, &t)
							most.threads = max(most.threads, t)
						}
						if n, ok := strings.CutPrefix(line, "VmHWM:"); ok {
							var kb int
							fmt.Sscan(n, &kb)
							most.hwmKB = max(most.hwmKB, kb)
						}
					}
				}
				select {
				case <-stop:
					sampled <- most
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		err = cmd.Wait()
		close(stop)
		most = <-sampled
	}
	r := run{wall: time.Since(start), out: buf.String(), threads: most.threads, rssMB: float64(most.hwmKB) / 1024}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("gsd %v: %v", args, err)
	}
	if code != want {
		tb.Fatalf("gsd %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, tail(r.out))
	}
	ps := cmd.ProcessState
	r.cpu = ps.UserTime() + ps.SystemTime()
	return r
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

const serviceHCL = `
service "app" {
  hosts        = { sim = "true" }
  binary       = "app.exe"
  version      = "1.0.0"
  display_name = %q
  rollout {
    max_parallel = %q
  }
}
`

// lab is a built gsd and the environment it runs in against simulated
// hosts.
type lab struct {
	gsd string
	env []string
}

func newLab(tb testing.TB) *lab {
	tb.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		tb.Fatal(err)
	}
	bin := tb.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "gsd"), "./cmd/gsd")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("building gsd: %v\n%s", err, out)
	}
	// The hosts run the agent in-process; gsd only needs an agent file
	// to name.
	agentExe := filepath.Join(bin, "gsd-agent.exe")
	if err := os.WriteFile(agentExe, []byte("MZ simulated agent"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return &lab{gsd: filepath.Join(bin, "gsd"), env: []string{"GSD_AGENT_EXE=" + agentExe, "GSD_CACHE_DIR=" + filepath.Join(bin, "cache"), "NO_COLOR=1"}}
}

// fleetDir starts n simulated hosts and a directory whose configuration
// deploys one service to all of them; write(display, step) rewrites the
// service with another display name and rollout step.
func (l *lab) fleetDir(tb testing.TB, n int) (fleet *Fleet, dir string, write func(display, step string)) {
	tb.Helper()
	dir = tb.TempDir()
	// GSD_SCALE_HTTPS=1 measures the HTTPS way in instead of the default.
	fleet, err := Start(Options{Hosts: n, Delay: 20 * time.Millisecond, User: "gsd", Password: "sim-p4ss!", Dir: dir,
		HTTPS: os.Getenv("GSD_SCALE_HTTPS") == "1"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(fleet.Close)
	if err := os.WriteFile(filepath.Join(dir, "app.exe"), []byte("MZ simulated service"), 0o644); err != nil {
		tb.Fatal(err)
	}
	write = func(display, step string) {
		tb.Helper()
		src := fleet.HCL() + fmt.Sprintf(serviceHCL, display, step)
		if err := os.WriteFile(filepath.Join(dir, "fleet.hcl"), []byte(src), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return fleet, dir, write
}

func (l *lab) run(tb testing.TB, dir string, want int, args ...string) run {
	tb.Helper()
	return gsd(tb, l.gsd, dir, l.env, want, args...)
}

// TestSimulatedFleet is the benchmark's set-up in small, so make test
// keeps it working: gsd applies to 5 simulated hosts, then a no-op plan
// reads each host's facts in exactly one round trip over two connections,
// the default way in (HTTP, NTLM, encrypted messages), and a change is
// planned and applied on every host.
func TestSimulatedFleet(t *testing.T) {
	l := newLab(t)
	const n = 5
	fleet, dir, write := l.fleetDir(t, n)
	write("App v1", "100%")
	l.run(t, dir, 0, "apply", "-auto-approve")
	before := fleet.Counts()
	l.run(t, dir, 0, "plan", "-detailed-exitcode")
	got := fleet.Counts().Since(before)
	// Over HTTPS the second connection resumes the first's TLS session.
	resumed := int64(0)
	if os.Getenv("GSD_SCALE_HTTPS") == "1" {
		resumed = n
	}
	if got.Facts != n || got.Conns != 2*n || got.Resumed != resumed {
		t.Errorf("a no-op plan over %d hosts: %+v; want %d facts round trips, %d connections, %d TLS sessions resumed", n, got, n, 2*n, resumed)
	}
	write("App v2", "40%")
	if out := l.run(t, dir, 2, "plan", "-detailed-exitcode").out; strings.Count(out, "display_name") != n {
		t.Errorf("the plan does not change display_name on each of %d hosts:\n%s", n, out)
	}
	if out := l.run(t, dir, 0, "apply", "-auto-approve").out; !strings.Contains(out, fmt.Sprintf("Apply finished: %d steps on ", n)) {
		t.Errorf("the apply did not change every host:\n%s", out)
	}
	l.run(t, dir, 0, "plan", "-detailed-exitcode")
}

// BenchmarkScale plans and applies over 1, 10, 100 and 1,000 simulated
// hosts (20 ms added to every WinRM answer) with the real gsd binary at
// -parallelism 100, and reports per size: the no-op plan's wall time, its
// CPU time in all and per host, its peak RSS, facts round trips and
// connections per host, the ratio to the ideal (ceil(n/100) waves of one
// host's plan), and an apply of a one-attribute change rolled out 10 % at
// a time, beside one host's and beside 10 hosts' (the same 10 batches,
// narrower). gsd's CPU is also split into connection set-up and the
// rest, by a CPU profile of one more plan. Run it with make bench-scale.
func BenchmarkScale(b *testing.B) {
	if os.Getenv("GSD_BENCH_SCALE") != "1" {
		b.Skip("set GSD_BENCH_SCALE=1 (make bench-scale): it starts 1,000 simulated hosts")
	}
	l := newLab(b)
	const parallelism = 100
	var onePlan, oneApply, tenApply time.Duration
	for _, n := range scaleSizes() {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			fleet, dir, write := l.fleetDir(b, n)
			par := fmt.Sprint(parallelism)
			write("App v1", "100%")
			l.run(b, dir, 0, "apply", "-auto-approve", "-parallelism", par)
			var plan run
			var counted Tally
			for range b.N {
				before := fleet.Counts()
				plan = l.run(b, dir, 0, "plan", "-detailed-exitcode", "-parallelism", par)
				counted = fleet.Counts().Since(before)
			}
			// One more plan under the CPU profiler says which share of
			// gsd's CPU is connection set-up (TLS handshakes, NTLM
			// messages); the share applies to the unprofiled run's CPU.
			// Below 100 hosts a 10 ms sampler sees too little of it.
			setup := math.NaN()
			if n >= 100 {
				prof := filepath.Join(dir, "cpu.pprof")
				gsd(b, l.gsd, dir, append(l.env[:len(l.env):len(l.env)], "GSD_CPUPROFILE="+prof), 0, "plan", "-detailed-exitcode", "-parallelism", par)
				if keep := os.Getenv("GSD_SCALE_PROFILE"); keep != "" {
					if b, err := os.ReadFile(prof); err == nil {
						os.WriteFile(fmt.Sprintf("%s.%d", keep, n), b, 0o644)
					}
				}
				setup = setupShare(b, prof)
			}
			if n == 1000 {
				// What other -parallelism defaults would give here.
				for _, p := range []int{10, 50} {
					r := l.run(b, dir, 0, "plan", "-detailed-exitcode", "-parallelism", fmt.Sprint(p))
					b.ReportMetric(float64(r.wall.Milliseconds()), fmt.Sprintf("plan-ms@p%d", p))
					b.ReportMetric(r.rssMB, fmt.Sprintf("rss-MB@p%d", p))
				}
			}
			write("App v2", "10%")
			apply := l.run(b, dir, 0, "apply", "-auto-approve", "-parallelism", par)
			if !strings.Contains(apply.out, fmt.Sprintf("Apply finished: %d steps on ", n)) {
				b.Fatalf("the apply did not change every host:\n%s", tail(apply.out))
			}
			switch n {
			case 1:
				onePlan, oneApply = plan.wall, apply.wall
			case 10:
				tenApply = apply.wall
			}
			waves := math.Ceil(float64(n) / parallelism)
			b.ReportMetric(float64(plan.wall.Milliseconds()), "plan-ms")
			b.ReportMetric(float64(plan.cpu.Milliseconds()), "plan-cpu-ms")
			cpuPerHost := float64(plan.cpu.Microseconds()) / 1000 / float64(n)
			b.ReportMetric(cpuPerHost, "cpu-ms/host")
			if !math.IsNaN(setup) {
				b.ReportMetric(cpuPerHost*setup, "setup-cpu-ms/host")
				b.ReportMetric(cpuPerHost*(1-setup), "rest-cpu-ms/host")
			}
			b.ReportMetric(plan.rssMB, "rss-MB")
			b.ReportMetric(float64(plan.threads), "threads")
			perHost := func(v int64, unit string) { b.ReportMetric(float64(v)/float64(n), unit) }
			perHost(counted.Facts, "facts/host")
			perHost(counted.Conns, "conns/host")
			if counted.Resumed > 0 {
				perHost(counted.Resumed, "tls-resumed/host")
			}
			perHost(counted.Requests, "requests/host")
			if onePlan > 0 {
				b.ReportMetric(float64(plan.wall)/float64(onePlan), "plan÷1host")
				b.ReportMetric(float64(plan.wall)/(waves*float64(onePlan)), "plan÷ideal")
			}
			b.ReportMetric(float64(apply.wall.Milliseconds()), "apply-ms")
			if oneApply > 0 {
				b.ReportMetric(float64(apply.wall)/float64(oneApply), "apply÷1host")
			}
			if tenApply > 0 {
				// From 10 hosts on, a rollout of 10 % at a time has 10
				// batches whatever the fleet's size: the same batches,
				// each 10 or 100 times wider.
				b.ReportMetric(float64(apply.wall)/float64(tenApply), "apply÷10hosts")
			}
			b.ReportMetric(float64(apply.cpu.Microseconds())/1000/float64(n), "apply-cpu-ms/host")
		})
	}
}

// scaleSizes are the fleet sizes measured: 1, 10, 100 and 1,000 hosts, or
// those GSD_SCALE_SIZES lists (comma-separated), for a quicker look.
func scaleSizes() []int {
	s := os.Getenv("GSD_SCALE_SIZES")
	if s == "" {
		return []int{1, 10, 100, 1000}
	}
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// setupShare is the share of a CPU profile's samples spent setting up
// connections: dialing, the TLS handshake if any, and the NTLM exchange,
// as pprof counts them.
func setupShare(tb testing.TB, profile string) float64 {
	tb.Helper()
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=1000000",
		`-focus=winrm\.\(\*connPool\)\.dial`, profile).CombinedOutput()
	if err != nil {
		tb.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	// "Showing nodes accounting for 0.71s, 34.47% of 2.06s total"
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Showing nodes accounting for "); ok {
			var pct float64
			if _, after, ok := strings.Cut(rest, ", "); ok {
				if _, err := fmt.Sscanf(after, "%f%%", &pct); err == nil {
					return pct / 100
				}
			}
		}
	}
	tb.Fatalf("go tool pprof printed no total:\n%s", out)
	return 0
}
