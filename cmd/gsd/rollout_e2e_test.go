package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox"
	"github.com/gsd-deploy/gsd/sandbox/netns"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/views"
)

// rolloutLab is a running sandbox of n hosts that rollout tests and
// benchmarks share: the gsd and agent binaries, the sandbox directory
// and each host's record (address, Wine prefix, network namespace).
type rolloutLab struct {
	tb     testing.TB
	gsd    string
	env    []string
	sbDir  string // where sandbox up ran: sandbox.hcl, sandbox.auto.gsdvars
	repo   string
	hosts  []sandbox.HostState
	secret string
}

func startRolloutLab(tb testing.TB, n int) *rolloutLab {
	tb.Helper()
	if os.Getenv("GSD_E2E") != "1" {
		tb.Skip("set GSD_E2E=1 to run rollouts against sandbox hosts")
	}
	sandboxtest.RequireWine(tb)
	repo, err := filepath.Abs("../..")
	if err != nil {
		tb.Fatal(err)
	}
	bin := tb.TempDir()
	for _, b := range []struct {
		out, pkg string
		env      []string
	}{{"gsd", ".", nil}, {"gsd-agent.exe", "../gsd-agent", []string{"GOOS=windows", "GOARCH=amd64"}}} {
		if err := goBuildErr(filepath.Join(bin, b.out), b.env, b.pkg); err != nil {
			tb.Fatal(err)
		}
	}
	l := &rolloutLab{tb: tb, gsd: filepath.Join(bin, "gsd"), sbDir: tb.TempDir(), repo: repo}
	l.env = []string{"GSD_AGENT_EXE=" + filepath.Join(bin, "gsd-agent.exe"), "GSD_CACHE_DIR=" + filepath.Join(bin, "cache"), "NO_COLOR=1"}
	if out, err := runGsd(l.gsd, l.sbDir, l.env, "sandbox", "up", "-n", strconv.Itoa(n)); err != nil {
		tb.Fatalf("sandbox up: %v\n%s", err, out)
	}
	tb.Cleanup(func() {
		if out, err := runGsd(l.gsd, l.sbDir, l.env, "sandbox", "down"); err != nil {
			tb.Errorf("sandbox down: %v\n%s", err, out)
		}
	})
	st, err := sandbox.LoadState(filepath.Join(l.sbDir, sandbox.DefaultDir))
	if err != nil {
		tb.Fatal(err)
	}
	l.hosts, l.secret = st.Hosts, st.Password
	for i := range l.hosts {
		if !filepath.IsAbs(l.hosts[i].Prefix) {
			l.hosts[i].Prefix = filepath.Join(l.sbDir, l.hosts[i].Prefix)
		}
	}
	return l
}

// caseDir makes a configuration directory holding the sandbox's host
// blocks and password and the given HCL as rollout.hcl.
func (l *rolloutLab) caseDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, f := range []string{sandbox.HCLFile, sandbox.VarsFile} {
		b, err := os.ReadFile(filepath.Join(l.sbDir, f))
		if err != nil {
			tb.Fatal(err)
		}
		// sandbox.hcl names the CA relative to itself.
		b = caCert.ReplaceAllFunc(b, func(m []byte) []byte {
			path := caCert.FindSubmatch(m)[1]
			if filepath.IsAbs(string(path)) {
				return m
			}
			return []byte(fmt.Sprintf("ca_cert = %q", filepath.Join(l.sbDir, string(path))))
		})
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func writeHCL(tb testing.TB, dir, src string) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, "rollout.hcl"), []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// gsd runs the real binary in dir and fails tb unless it exits wantCode.
func (l *rolloutLab) gsdRun(tb testing.TB, dir string, wantCode int, args ...string) string {
	tb.Helper()
	out, code := l.gsdCode(tb, dir, args...)
	if code != wantCode {
		tb.Fatalf("gsd %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return out
}

func (l *rolloutLab) gsdCode(tb testing.TB, dir string, args ...string) (string, int) {
	tb.Helper()
	cmd := exec.Command(l.gsd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), l.env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("gsd %v: %v", args, err)
	}
	if l.secret != "" && strings.Contains(string(out), l.secret) {
		tb.Fatalf("gsd %s printed the sandbox password", strings.Join(args, " "))
	}
	return string(out), code
}

// timedLine is one line of gsd's output and when the test read it.
type timedLine struct {
	at   time.Time
	text string
}

// streamGsd starts gsd and timestamps its output lines as they come;
// onLine (may be nil) sees each line at once. wait returns the lines and
// the exit code.
func (l *rolloutLab) streamGsd(tb testing.TB, dir string, onLine func(string), args ...string) (wait func() ([]timedLine, int)) {
	tb.Helper()
	var lines []timedLine
	done := l.startGsd(tb, dir, func(line string, _ *os.Process) {
		lines = append(lines, timedLine{time.Now(), line})
		if onLine != nil {
			onLine(line)
		}
	}, args...)
	return func() ([]timedLine, int) {
		_, code := done()
		return lines, code
	}
}

func joinLines(lines []timedLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// status reads gsd status -json: host -> service -> its status.
func (l *rolloutLab) status(tb testing.TB, dir string) map[string]map[string]*views.ServiceStatus {
	tb.Helper()
	cmd := exec.Command(l.gsd, "status", "-json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), l.env...)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("gsd status -json: %v\n%s", err, out)
	}
	var st views.Status
	if err := json.Unmarshal(out, &st); err != nil {
		tb.Fatalf("gsd status -json: %v\n%s", err, out)
	}
	m := map[string]map[string]*views.ServiceStatus{}
	for _, h := range st.Hosts {
		if h.Error != "" {
			tb.Fatalf("gsd status: host %s: %s", h.Host, h.Error)
		}
		m[h.Host] = map[string]*views.ServiceStatus{}
		for _, s := range h.Services {
			m[h.Host][s.Service] = s
		}
	}
	return m
}

// hostFile is a host's C:\<name>, seen from Linux.
func (l *rolloutLab) hostFile(i int, name string) string {
	return filepath.Join(l.hosts[i].Prefix, "drive_c", name)
}

// get asks a service on a host for path over the sandbox bridge.
func (l *rolloutLab) get(i, port int, path string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d%s", l.hosts[i].Address, port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// helloHCL is the hello service at version on hosts (an HCL expression),
// with an HTTP health check, the given mode, extra args and rollout body.
func (l *rolloutLab) helloHCL(name, version, hosts, mode string, port int, extraArgs []string, rollout string) string {
	args := []string{"-listen", fmt.Sprintf(":%d", port)}
	if mode == "wrapped" {
		args = append(args, "-foreground")
	}
	args = append(args, extraArgs...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`
build %[1]q {
  package = "./examples/services/hello"
  dir     = %[2]q
  ldflags = "-X main.version=%[3]s"
}
service %[1]q {
  hosts   = %[4]s
  binary  = build.%[1]s
  version = %[3]q
  mode    = %[5]q
  args    = [%[6]s]
  health {
    http     = "http://localhost:%[7]d/healthz"
    interval = "100ms"
    timeout  = "30s"
  }
  rollout {
%[8]s
  }
}
`, name, l.repo, version, hosts, mode, strings.Join(quoted, ", "), port, rollout)
}

var caCert = regexp.MustCompile(`ca_cert\s*=\s*"([^"]*)"`)

var batchLine = regexp.MustCompile(`(?m)^service\.(\S+): batch (\d+) of (\d+): (.*)$`)

// batches lists the batch lines apply printed for service, in order.
func batches(out, service string) []string {
	var got []string
	for _, m := range batchLine.FindAllStringSubmatch(out, -1) {
		if m[1] == service {
			got = append(got, fmt.Sprintf("%s/%s: %s", m[2], m[3], m[4]))
		}
	}
	return got
}

// snapshot is what must not change on a host a rollout left alone.
type snapshot struct {
	version string
	pid     uint32
	child   int
	since   time.Time
}

func snap(s *views.ServiceStatus) snapshot {
	out := snapshot{pid: s.PID, since: s.Since}
	if s.Release != nil {
		out.version = s.Release.Version
	}
	if s.Wrapper != nil {
		out.child = s.Wrapper.ChildPID
	}
	return out
}

// TestRolloutEndToEnd upgrades the hello service on three sandbox hosts
// with health gates and injected failures, through the real gsd binary.
func TestRolloutEndToEnd(t *testing.T) {
	l := startRolloutLab(t, 3)
	h := func(i int) string { return l.hosts[i].Name }
	all := `{ sandbox = "true" }`

	// destroyAt removes the case's services when the subtest ends, even
	// after a failure, so the next case starts from clean hosts.
	destroyAt := func(t *testing.T, dir string) {
		t.Cleanup(func() {
			if out, code := l.gsdCode(t, dir, "destroy", "-auto-approve"); code != 0 {
				t.Errorf("destroy: exit %d\n%s", code, out)
			}
		})
	}
	ports := map[string]int{"ra": 8181, "rb": 8182, "rc": 8183, "rd": 8184, "re": 8185}
	running := func(t *testing.T, st map[string]map[string]*views.ServiceStatus, host, svc, version string) *views.ServiceStatus {
		t.Helper()
		s := st[host][svc]
		switch {
		case s == nil || !s.Deployed:
			t.Fatalf("%s: service.%s not deployed", host, svc)
		case s.Release == nil || s.Release.Version != version:
			t.Errorf("%s: service.%s release %+v, want %s", host, svc, s.Release, version)
		case s.State != "running":
			t.Errorf("%s: service.%s is %s, want running", host, svc, s.State)
		}
		// gsd status's own health column is logged, not relied on:
		// against sandbox hosts it says "this host's agent cannot check
		// health"; the test asks /healthz itself.
		if code, _, err := l.get(hostIndex(l, host), ports[svc], "/healthz"); err != nil || code != 200 {
			t.Errorf("%s: service.%s /healthz: %d %v, want 200", host, svc, code, err)
		}
		return s
	}

	t.Run("RolloutPasses", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		ro := "    max_parallel = 2"
		writeHCL(t, dir, l.helloHCL("ra", "1.0.0", all, "native", 8181, nil, ro))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		writeHCL(t, dir, l.helloHCL("ra", "2.0.0", all, "native", 8181, nil, ro))
		out := l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		want := []string{"1/2: " + h(0) + ", " + h(1), "2/2: " + h(2)}
		if got := batches(out, "ra"); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("batches %q, want %q\n%s", got, want, out)
		}
		// Every host of batch 1 is healthy before batch 2 starts.
		b2 := strings.Index(out, "service.ra: batch 2 of 2")
		for _, host := range []string{h(0), h(1)} {
			if i := strings.Index(out, "host."+host+": service.ra: healthy"); i < 0 || i > b2 {
				t.Errorf("%s not healthy before batch 2:\n%s", host, out)
			}
		}
		st := l.status(t, dir)
		t.Logf("gsd status -json health of service.ra on %s: %+v", h(0), st[h(0)]["ra"].Health)
		for i := range 3 {
			running(t, st, h(i), "ra", "2.0.0")
			if code, body, err := l.get(i, 8181, "/"); err != nil || code != 200 || !strings.Contains(body, "2.0.0") {
				t.Errorf("%s answers %d %q %v, want hello from 2.0.0", h(i), code, body, err)
			}
		}
		if out := l.gsdRun(t, dir, 0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
			t.Errorf("plan after the rollout:\n%s", out)
		}
	})

	// The new release fails its check on the second host only: the file
	// C:\hello-fail-2.0.0.flag exists there, and the service's args name
	// C:\hello-fail-{version}.flag, so the old release stays healthy
	// where the new one fails.
	failIf := []string{"-unhealthy-if-exists", `C:\hello-fail-{version}.flag`}
	flag := func(t *testing.T, i int) {
		path := l.hostFile(i, "hello-fail-2.0.0.flag")
		if err := os.WriteFile(path, []byte("fail\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}

	t.Run("RolloutFailsSecondBatch", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		ro := "    max_parallel = 1"
		writeHCL(t, dir, l.helloHCL("rb", "1.0.0", all, "wrapped", 8182, failIf, ro))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		before := l.status(t, dir)
		flag(t, 1)
		writeHCL(t, dir, l.helloHCL("rb", "2.0.0", all, "wrapped", 8182, failIf, ro))
		out := l.gsdRun(t, dir, 1, "apply", "-auto-approve")
		for _, want := range []string{
			"service.rb: batch 1 of 3: " + h(0),
			"service.rb: batch 2 of 3: " + h(1),
			"Rollout: service.rb stopped after batch 2 of 3.",
			"host." + h(1) + " failed its health: http check failed",
			"HTTP 503",
			"the service printed last:",
			"healthz: failing on purpose",
			"rollback: switched back to 1.0.0 (release r-",
			") and healthy",
			"left untouched: " + h(2),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("apply output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "batch 3 of 3") || strings.Contains(out, "host."+h(2)+": service.rb: replace") {
			t.Errorf("the third host was touched:\n%s", out)
		}
		st := l.status(t, dir)
		running(t, st, h(0), "rb", "2.0.0")
		running(t, st, h(1), "rb", "1.0.0")
		running(t, st, h(2), "rb", "1.0.0")
		if a, b := snap(before[h(2)]["rb"]), snap(st[h(2)]["rb"]); a != b {
			t.Errorf("%s changed though untouched: before %+v, after %+v", h(2), a, b)
		}
		if code, body, err := l.get(1, 8182, "/"); err != nil || code != 200 || !strings.Contains(body, "1.0.0") {
			t.Errorf("%s answers %d %q %v, want hello from 1.0.0", h(1), code, body, err)
		}
		if code, _, err := l.get(1, 8182, "/healthz"); err != nil || code != 200 {
			t.Errorf("%s /healthz: %d %v, want 200", h(1), code, err)
		}
	})

	t.Run("RolloutCanaryFails", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		ro := "    canary = 1"
		writeHCL(t, dir, l.helloHCL("rc", "1.0.0", all, "native", 8183, failIf, ro))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		before := l.status(t, dir)
		flag(t, 0)
		writeHCL(t, dir, l.helloHCL("rc", "2.0.0", all, "native", 8183, failIf, ro))
		out := l.gsdRun(t, dir, 1, "apply", "-auto-approve")
		for _, want := range []string{"service.rc: batch 1 of", "host." + h(0) + " failed its health: http check failed", "HTTP 503", "rollback: switched back to 1.0.0 (release r-", ") and healthy"} {
			if !strings.Contains(out, want) {
				t.Errorf("apply output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "batch 2 of") {
			t.Errorf("went past the failed canary:\n%s", out)
		}
		st := l.status(t, dir)
		running(t, st, h(0), "rc", "1.0.0")
		for _, i := range []int{1, 2} {
			running(t, st, h(i), "rc", "1.0.0")
			if a, b := snap(before[h(i)]["rc"]), snap(st[h(i)]["rc"]); a != b {
				t.Errorf("%s changed though untouched: before %+v, after %+v", h(i), a, b)
			}
		}
	})

	t.Run("RolloutCanaryPause", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		ro := "    canary = 1\n    canary_pause = true"
		writeHCL(t, dir, l.helloHCL("rd", "1.0.0", all, "native", 8184, nil, ro))
		// A first apply creates the service everywhere; it pauses after
		// its canary too, and -continue finishes it.
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		l.gsdRun(t, dir, 0, "apply", "-auto-approve", "-continue")
		before := l.status(t, dir)
		writeHCL(t, dir, l.helloHCL("rd", "2.0.0", all, "native", 8184, nil, ro))
		out := l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		for _, want := range []string{"service.rd: canary " + h(0) + " healthy; pausing", "paused after its canary. Run gsd apply -continue"} {
			if !strings.Contains(out, want) {
				t.Errorf("apply output lacks %q:\n%s", want, out)
			}
		}
		st := l.status(t, dir)
		running(t, st, h(0), "rd", "2.0.0")
		for _, i := range []int{1, 2} {
			running(t, st, h(i), "rd", "1.0.0")
			if a, b := snap(before[h(i)]["rd"]), snap(st[h(i)]["rd"]); a != b {
				t.Errorf("%s changed though paused: before %+v, after %+v", h(i), a, b)
			}
		}
		out = l.gsdRun(t, dir, 0, "apply", "-auto-approve", "-continue")
		if strings.Contains(out, "host."+h(0)+": service.rd:") {
			t.Errorf("-continue changed the canary again:\n%s", out)
		}
		st = l.status(t, dir)
		for i := range 3 {
			running(t, st, h(i), "rd", "2.0.0")
		}
		l.gsdRun(t, dir, 0, "plan", "-detailed-exitcode")
	})

	t.Run("RolloutAgentKilled", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		ro := "    max_parallel = 3"
		delay := []string{"-start-delay", "6s"}
		writeHCL(t, dir, l.helloHCL("re", "1.0.0", all, "native", 8185, delay, ro))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		writeHCL(t, dir, l.helloHCL("re", "2.0.0", all, "native", 8185, delay, ro))
		// When the second host starts the new release (which takes 6 s
		// to come up), its agent is killed.
		var once sync.Once
		killed := make(chan []int, 1)
		wait := l.streamGsd(t, dir, func(line string) {
			if line == "host."+h(1)+": starting re" {
				once.Do(func() {
					time.Sleep(time.Second)
					killed <- killAgents(t, l.hosts[1])
				})
			}
		}, "apply", "-auto-approve")
		lines, code := wait()
		out := joinLines(lines)
		select {
		case pids := <-killed:
			t.Logf("killed gsd-agent.exe processes %v on %s", pids, h(1))
		default:
			t.Fatalf("the apply never started the service on %s:\n%s", h(1), out)
		}
		t.Logf("apply with the agent killed: exit %d\n%s", code, out)
		if code != 1 || !strings.Contains(out, "host."+h(1)) {
			t.Errorf("apply with the agent killed: exit %d, want 1 and a failure of %s\n%s", code, h(1), out)
		}
		// Before any other apply, the host runs one whole release, old or
		// new, and the program that answers is that release's.
		st := l.status(t, dir)
		if s := st[h(1)]["re"]; s == nil || s.Release == nil || s.State != "running" {
			t.Errorf("%s after its agent was killed: %+v, want running one release", h(1), s)
		} else {
			var code int
			var body string
			for range 40 {
				if code, body, _ = l.get(1, 8185, "/"); code == 200 {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if code != 200 || !strings.Contains(body, "hello from "+s.Release.Version) {
				t.Errorf("%s runs release %s but answers %d %q", h(1), s.Release.Version, code, body)
			}
		}
		out, code = l.gsdCode(t, dir, "apply", "-auto-approve")
		t.Logf("next apply: exit %d\n%s", code, out)
		if code != 0 {
			t.Fatalf("next apply: exit %d, want 0\n%s", code, out)
		}
		if out, code := l.gsdCode(t, dir, "plan", "-detailed-exitcode"); code != 0 {
			t.Fatalf("plan after recovery: exit %d, want 0\n%s", code, out)
		}
		st = l.status(t, dir)
		for i := range 3 {
			running(t, st, h(i), "re", "2.0.0")
		}
	})
}

func hostIndex(l *rolloutLab, name string) int {
	for i, h := range l.hosts {
		if h.Name == name {
			return i
		}
	}
	l.tb.Fatalf("no host %s", name)
	return -1
}

// killAgents kills every gsd-agent.exe process in a host's network
// namespace (the agent serving gsd, not a wrapped service's host) and
// returns their PIDs.
func killAgents(tb testing.TB, host sandbox.HostState) []int {
	pids, err := netns.Pids(host.Namespace)
	if err != nil {
		tb.Errorf("pids of %s: %v", host.Namespace, err)
		return nil
	}
	var killed []int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cmd := strings.ToLower(strings.ReplaceAll(string(b), "\x00", " "))
		if !strings.Contains(cmd, "gsd-agent.exe") || strings.Contains(cmd, "service-host") {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil && p.Kill() == nil {
			killed = append(killed, pid)
		}
	}
	if len(killed) == 0 {
		tb.Errorf("no gsd-agent.exe process found in %s", host.Namespace)
	}
	return killed
}
