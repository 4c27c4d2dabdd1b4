package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/views"
)

// hcRelease is one version of the test service as a user would write it:
// everything the process sees.
type hcRelease struct {
	name, version, binary string // binary: the version the build embeds
	mode, display         string
	port                  int
	env                   map[string]string
	args                  []string
	file                  string // hello.yaml's content
	rollout               string
}

func (r hcRelease) hcl(repo string) string {
	args := []string{"-listen", fmt.Sprintf(":%d", r.port), "-config", `C:\ProgramData\gsd\services\` + r.name + `\files\hello.yaml`}
	if r.mode == "wrapped" {
		args = append(args, "-foreground")
	}
	args = append(args, r.args...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	keys := make([]string, 0, len(r.env))
	for k := range r.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, fmt.Sprintf("%s = %q", k, r.env[k]))
	}
	return fmt.Sprintf(`
build %[1]q {
  package = "./examples/services/hello"
  dir     = %[2]q
  ldflags = "-X main.version=%[3]s"
}
service %[1]q {
  hosts        = { sandbox = "true" }
  binary       = build.%[1]s
  version      = %[4]q
  mode         = %[5]q
  display_name = %[6]q
  args         = [%[7]s]
  env          = { %[8]s }
  file "hello.yaml" {
    content   = %[9]q
    on_change = "restart"
  }
  health {
    http     = "http://localhost:%[10]d/healthz"
    interval = "100ms"
    timeout  = "20s"
  }
  rollout {
%[11]s
  }
}
`, r.name, repo, r.binary, r.version, r.mode, r.display, strings.Join(quoted, ", "), strings.Join(env, ", "), r.file, r.port, r.rollout)
}

// managedFile is a service's hello.yaml on host i, read from Linux.
func (l *rolloutLab) managedFile(t *testing.T, i int, service string) string {
	t.Helper()
	b, err := os.ReadFile(l.hostFile(i, filepath.Join("ProgramData", "gsd", "services", service, "files", "hello.yaml")))
	if err != nil {
		t.Fatalf("%s: %v", l.hosts[i].Name, err)
	}
	return string(b)
}

// TestWholeReleaseEndToEnd proves on sandbox hosts that a release is the
// unit: a failed upgrade returns the canary to the whole previous release
// (binary, environment, arguments, file, display name), a change of
// settings alone is health-gated and rolled back the same way, gsd
// rollback and gsd releases work by hand, and an agent killed or a WinRM
// connection cut mid-activation leaves one whole release running.
func TestWholeReleaseEndToEnd(t *testing.T) {
	l := startRolloutLab(t, 3)
	h := func(i int) string { return l.hosts[i].Name }
	destroyAt := func(t *testing.T, dir string) {
		t.Cleanup(func() {
			if out, code := l.gsdCode(t, dir, "destroy", "-auto-approve"); code != 0 {
				t.Errorf("destroy: exit %d\n%s", code, out)
			}
		})
	}
	runs := func(t *testing.T, st map[string]map[string]*views.ServiceStatus, i int, r hcRelease) {
		t.Helper()
		s := st[h(i)][r.name]
		switch {
		case s == nil || !s.Deployed:
			t.Fatalf("%s: service.%s not deployed", h(i), r.name)
		case s.Release == nil || s.Release.Version != r.version:
			t.Errorf("%s: service.%s runs %+v, want %s", h(i), r.name, s.Release, r.version)
		case s.State != "running":
			t.Errorf("%s: service.%s is %s, want running", h(i), r.name, s.State)
		}
		if code, body, err := l.get(i, r.port, "/"); err != nil || code != 200 || !strings.Contains(body, "hello from "+r.binary) {
			t.Errorf("%s answers %d %q %v, want hello from %s", h(i), code, body, err, r.binary)
		}
		if code, _, err := l.get(i, r.port, "/healthz"); err != nil || code != 200 {
			t.Errorf("%s: /healthz %d %v, want 200", h(i), code, err)
		}
		if got := l.managedFile(t, i, r.name); got != r.file {
			t.Errorf("%s: hello.yaml is %q, want %q", h(i), got, r.file)
		}
	}
	// failedCanaryCase applies v1 on all hosts, then v2 whose canary fails
	// its health check, and checks that the canary is back on the whole of
	// v1 and the others were never touched.
	failedCanaryCase := func(t *testing.T, v1, v2 hcRelease) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		writeHCL(t, dir, v1.hcl(l.repo))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		before := l.status(t, dir)
		writeHCL(t, dir, v2.hcl(l.repo))
		out := l.gsdRun(t, dir, 1, "apply", "-auto-approve")
		for _, want := range []string{
			"service." + v1.name + ": batch 1 of",
			"host." + h(0) + " failed its health: http check failed",
			"rollback: switched back to " + v1.version + " (release r-",
			") and healthy",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("apply output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "batch 2 of") {
			t.Errorf("went past the failed canary:\n%s", out)
		}
		st := l.status(t, dir)
		for i := range 3 {
			runs(t, st, i, v1)
		}
		for _, i := range []int{1, 2} {
			if a, b := snap(before[h(i)][v1.name]), snap(st[h(i)][v1.name]); a != b {
				t.Errorf("%s changed though untouched: before %+v, after %+v", h(i), a, b)
			}
		}
		if cur, was := st[h(0)][v1.name].Release, before[h(0)][v1.name].Release; cur == nil || was == nil || cur.ID != was.ID {
			t.Errorf("the canary runs release %+v, want v1's %+v", cur, was)
		}
		writeHCL(t, dir, v1.hcl(l.repo))
		if out, code := l.gsdCode(t, dir, "plan", "-detailed-exitcode"); code != 0 {
			t.Errorf("plan with v1's configuration: exit %d, want 0 (the canary must hold v1's exact settings)\n%s", code, out)
		}
	}

	t.Run("FailedUpgradeRestoresWholeRelease", func(t *testing.T) {
		v1 := hcRelease{name: "wa", version: "1.0.0", binary: "1.0.0", mode: "wrapped", display: "Whole A v1", port: 8191,
			env: map[string]string{"HELLO_UNHEALTHY": "0", "MODE": "one"}, args: []string{"-start-delay", "0s"},
			file: "greeting: one\n", rollout: "    canary = 1"}
		v2 := v1
		v2.version, v2.binary, v2.display = "2.0.0", "2.0.0", "Whole A v2"
		v2.env = map[string]string{"HELLO_UNHEALTHY": "1", "MODE": "two"}
		v2.args = []string{"-start-delay", "1ms"}
		v2.file = "greeting: two\n"
		failedCanaryCase(t, v1, v2)
	})

	t.Run("SettingsOnlyChangeRollsBack", func(t *testing.T) {
		v1 := hcRelease{name: "wb", version: "1.0.0", binary: "1.0.0", mode: "wrapped", display: "Whole B", port: 8192,
			env: map[string]string{"HELLO_UNHEALTHY": "0"}, file: "greeting: b\n", rollout: "    canary = 1"}
		v2 := v1
		v2.env = map[string]string{"HELLO_UNHEALTHY": "1"}
		failedCanaryCase(t, v1, v2)
	})

	t.Run("RollbackAndReleasesCommands", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		v1 := hcRelease{name: "wc", version: "1.0.0", binary: "1.0.0", mode: "native", display: "Whole C", port: 8193,
			file: "greeting: c1\n", rollout: "    max_parallel = 1"}
		v2 := v1
		v2.version, v2.binary, v2.file = "2.0.0", "2.0.0", "greeting: c2\n"
		writeHCL(t, dir, v1.hcl(l.repo))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		writeHCL(t, dir, v2.hcl(l.repo))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")

		ids := &idNames{}
		human := l.gsdRun(t, dir, 0, "releases", "service.wc")
		golden(t, "releases-e2e.txt", ids.normalize(human))
		var rel views.Releases
		if err := json.Unmarshal([]byte(l.gsdRun(t, dir, 0, "releases", "service.wc", "-json")), &rel); err != nil {
			t.Fatal(err)
		}
		for _, hr := range rel.Hosts {
			if len(hr.Releases) != 2 || !hr.Releases[0].Active || hr.Releases[0].Version != "2.0.0" || hr.Releases[1].Version != "1.0.0" {
				t.Errorf("%s keeps %+v, want 2.0.0 (active) then 1.0.0", hr.Host, hr.Releases)
			}
			if got := strings.Join(hr.Releases[0].Changes, ","); got != "binary,version,file.hello.yaml" {
				t.Errorf("%s: 2.0.0 changed %q from 1.0.0, want binary,version,file.hello.yaml", hr.Host, got)
			}
		}
		golden(t, "releases-e2e.json", ids.normalizeJSON(t, &rel))

		out := l.gsdRun(t, dir, 0, "rollback", "service.wc", "-auto-approve")
		golden(t, "rollback-e2e.txt", ids.normalize(out))
		st := l.status(t, dir)
		for i := range 3 {
			runs(t, st, i, v1)
		}
		writeHCL(t, dir, v1.hcl(l.repo))
		if out, code := l.gsdCode(t, dir, "plan", "-detailed-exitcode"); code != 0 {
			t.Errorf("plan with v1 after gsd rollback: exit %d, want 0\n%s", code, out)
		}
		// Forward again by version, on one host only.
		out = l.gsdRun(t, dir, 0, "rollback", "service.wc", "-to", "2.0.0", "-host", h(1), "-auto-approve")
		if !strings.Contains(out, "host."+h(1)+": service.wc: healthy") || strings.Contains(out, "host."+h(0)+": service.wc:") {
			t.Errorf("rollback -to 2.0.0 -host %s:\n%s", h(1), out)
		}
		st = l.status(t, dir)
		runs(t, st, 1, v2)
		runs(t, st, 0, v1)
		if out, code := l.gsdCode(t, dir, "rollback", "service.wc", "-to", "9.9.9", "-auto-approve"); code != 1 || !strings.Contains(out, "no 9.9.9 to roll back to") {
			t.Errorf("rollback to a version no host keeps: exit %d\n%s", code, out)
		}
	})

	t.Run("ConnectionCutMidActivation", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		v1 := hcRelease{name: "wd", version: "1.0.0", binary: "1.0.0", mode: "wrapped", display: "Whole D v1", port: 8194,
			env: map[string]string{"MODE": "one"}, args: []string{"-start-delay", "3s"}, file: "greeting: d1\n", rollout: "    max_parallel = 3"}
		v2 := v1
		v2.version, v2.binary, v2.display, v2.file = "2.0.0", "2.0.0", "Whole D v2", "greeting: d2\n"
		v2.env = map[string]string{"MODE": "two"}
		writeHCL(t, dir, v1.hcl(l.repo))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		writeHCL(t, dir, v2.hcl(l.repo))
		// When the host starts v2 (which takes 3 s to listen), every
		// WinRM connection to it is dropped for two seconds.
		var once sync.Once
		cut := make(chan struct{})
		wait := l.streamGsd(t, dir, func(line string) {
			if line == "host."+h(0)+": starting wd" {
				once.Do(func() {
					go func() {
						defer close(cut)
						if out, code := l.gsdCode(t, l.sbDir, "sandbox", "fault", "-drop", h(0)); code != 0 {
							t.Errorf("sandbox fault -drop: exit %d\n%s", code, out)
						}
						time.Sleep(2 * time.Second)
						if out, code := l.gsdCode(t, l.sbDir, "sandbox", "fault", h(0)); code != 0 {
							t.Errorf("sandbox fault: exit %d\n%s", code, out)
						}
					}()
				})
			}
		}, "apply", "-auto-approve")
		lines, code := wait()
		out := joinLines(lines)
		select {
		case <-cut:
		case <-time.After(30 * time.Second):
			t.Fatalf("the activation on %s never started:\n%s", h(0), out)
		}
		t.Logf("apply with the connection cut: exit %d\n%s", code, out)
		// Whichever release it ended on, it is whole and running.
		st := l.status(t, dir)
		got := st[h(0)]["wd"]
		switch {
		case got == nil || got.Release == nil:
			t.Fatalf("%s: wd not deployed after the cut", h(0))
		case got.Release.Version == "1.0.0":
			runs(t, st, 0, v1)
		default:
			runs(t, st, 0, v2)
		}
		out, code = l.gsdCode(t, dir, "apply", "-auto-approve")
		if code != 0 {
			t.Fatalf("next apply: exit %d, want 0\n%s", code, out)
		}
		if out, code := l.gsdCode(t, dir, "plan", "-detailed-exitcode"); code != 0 {
			t.Fatalf("plan after the next apply: exit %d, want 0\n%s", code, out)
		}
		st = l.status(t, dir)
		for i := range 3 {
			runs(t, st, i, v2)
		}
	})
}

// idNames gives release ids stable names in order of appearance (r-1,
// r-2, ...), and hides times and who applied, so output that names them
// can be pinned by a golden file.
type idNames struct {
	names map[string]string
}

var (
	releaseID = regexp.MustCompile(`r-[0-9a-f]{20}`)
	whenText  = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC \([^)]*\)`)
	byText    = regexp.MustCompile(`\S+@\S+`)
	// healthLine is an agent's report of a probe outcome, whose count
	// depends on timing.
	healthLine = regexp.MustCompile(`(?m)^host\.\S+: [a-z]+: .*\n`)
	hexShort   = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	address    = regexp.MustCompile(`\(\d+\.\d+\.\d+\.\d+(:\d+)?, `)
	// columns pads tables: folded so that placeholders of other widths
	// line up the same.
	columns = regexp.MustCompile(` {2,}`)
)

func (n *idNames) name(id string) string {
	if n.names == nil {
		n.names = map[string]string{}
	}
	if v, ok := n.names[id]; ok {
		return v
	}
	v := fmt.Sprintf("r-%d", len(n.names)+1)
	n.names[id] = v
	return v
}

func (n *idNames) normalize(s string) string {
	s = releaseID.ReplaceAllStringFunc(s, n.name)
	s = whenText.ReplaceAllString(s, "<when>")
	s = byText.ReplaceAllString(s, "<operator>")
	s = healthLine.ReplaceAllString(s, "")
	s = hexShort.ReplaceAllString(s, "<sha>")
	s = address.ReplaceAllString(s, "(<address>, ")
	return columns.ReplaceAllString(s, "  ")
}

func (n *idNames) normalizeJSON(t *testing.T, r *views.Releases) string {
	t.Helper()
	r.CheckedAt = time.Time{}
	for _, h := range r.Hosts {
		for _, k := range h.Releases {
			k.ID, k.Artifact, k.Activated, k.By = n.name(k.ID), "<sha256>", time.Time{}, "<operator>"
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}
