package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/views"
	"github.com/gsd-deploy/gsd/views/eventstest"
)

// split runs gsd in dir and returns its standard output and error apart,
// and its exit code.
func (l *rolloutLab) split(tb testing.TB, dir string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	cmd := exec.Command(l.gsd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), l.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("gsd %v: %v", args, err)
	}
	if l.secret != "" && strings.Contains(out.String()+errb.String(), l.secret) {
		tb.Fatalf("gsd %s printed the sandbox password", strings.Join(args, " "))
	}
	return out.String(), errb.String(), code
}

// summaryOf returns the summary event ending a JSON stream.
func summaryOf(tb testing.TB, stream string) views.EventSummary {
	tb.Helper()
	lines := strings.Split(strings.TrimSpace(stream), "\n")
	var ev views.Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.Summary == nil {
		tb.Fatalf("no summary at the end of:\n%s", stream)
	}
	return *ev.Summary
}

// terminal runs gsd with args in dir in a real terminal (a tmux session,
// 160×50), without NO_COLOR or CI, as a person at a terminal would. screen
// reads what the terminal shows; keys types; wait reads the screen until
// it shows want or gsd has ended (its exit code is shown as EXIT=N).
type terminal struct {
	t      *testing.T
	socket string
}

func (l *rolloutLab) terminal(t *testing.T, dir string, args ...string) *terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (make deps installs it)")
	}
	term := &terminal{t: t, socket: fmt.Sprintf("gsd-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	var env []string
	for _, kv := range l.env {
		if !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	script := fmt.Sprintf("cd %q && env -u CI -u NO_COLOR TERM=xterm-256color %s %q %s; echo EXIT=$?; sleep 600",
		dir, strings.Join(env, " "), l.gsd, strings.Join(quoted, " "))
	term.tmux("new-session", "-d", "-s", "gsd", "-x", "160", "-y", "50", script)
	t.Cleanup(func() { term.tmux("kill-server") })
	return term
}

func (term *terminal) tmux(args ...string) string {
	out, _ := exec.Command("tmux", append([]string{"-L", term.socket}, args...)...).CombinedOutput()
	return string(out)
}

func (term *terminal) screen() string { return term.tmux("capture-pane", "-p", "-t", "gsd") }

func (term *terminal) keys(keys ...string) {
	term.tmux(append([]string{"send-keys", "-t", "gsd"}, keys...)...)
}

func (term *terminal) wait(want string) string {
	for {
		s := term.screen()
		if strings.Contains(s, want) || strings.Contains(s, "EXIT=") {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOperateEndToEnd runs, on two sandbox hosts, what a person does with
// a deployed service day to day: apply with the JSON event stream
// (checked against its schema), restart, stop and start, break a lock a
// dead run left, apply to a partial fleet with -skip-unreachable, and
// watch an apply's live progress in a real terminal.
func TestOperateEndToEnd(t *testing.T) {
	l := startRolloutLab(t, 2)
	h0, h1 := l.hosts[0].Name, l.hosts[1].Name
	dir := l.caseDir(t)
	const port = 8186
	hcl := func(version string, extra ...string) {
		writeHCL(t, dir, l.helloHCL("op", version, `{ sandbox = "true" }`, "native", port, extra, "    max_parallel = 1"))
	}
	expect := func(t *testing.T, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	state := func(t *testing.T) map[string]*views.ServiceStatus {
		st := l.status(t, dir)
		return map[string]*views.ServiceStatus{h0: st[h0]["op"], h1: st[h1]["op"]}
	}

	t.Run("ApplyJSON", func(t *testing.T) {
		hcl("1.0.0")
		stdout, stderr, code := l.split(t, dir, "apply", "-auto-approve", "-json", "-detailed-exitcode")
		if code != 2 {
			t.Fatalf("apply -json -detailed-exitcode: exit %d, want 2 (changes made)\n%s%s", code, stdout, stderr)
		}
		types, err := eventstest.Validate([]byte(stdout))
		if err != nil {
			t.Fatalf("the event stream breaks its schema: %v", err)
		}
		for _, want := range []string{"planned_change", "change_summary", "upload_start", "upload_progress", "upload_complete", "batch_start", "apply_start", "apply_complete", "health_ok"} {
			if !strings.Contains(" "+strings.Join(types, " ")+" ", " "+want+" ") {
				t.Errorf("no %s event in:\n%s", want, stdout)
			}
		}
		// Per host: the native service and its event log source.
		if s := summaryOf(t, stdout); s.Outcome != "succeeded" || s.ExitCode != 2 || s.Hosts != 2 || s.Steps != 4 {
			t.Errorf("summary %+v", s)
		}
		stdout, _, code = l.split(t, dir, "apply", "-auto-approve", "-json", "-detailed-exitcode")
		if _, err := eventstest.Validate([]byte(stdout)); err != nil || code != 0 || summaryOf(t, stdout).Outcome != "no_changes" {
			t.Errorf("apply with nothing to do: exit %d, %v\n%s", code, err, stdout)
		}
		// Without -auto-approve a JSON run cannot ask; it says so in the
		// stream, which still ends with its summary.
		stdout, _, code = l.split(t, dir, "apply", "-json")
		if _, err := eventstest.Validate([]byte(stdout)); err != nil || code != 1 || !strings.Contains(stdout, "cannot ask for confirmation") {
			t.Errorf("apply -json without -auto-approve: exit %d, %v\n%s", code, err, stdout)
		}
	})

	t.Run("RestartStopStart", func(t *testing.T) {
		before := state(t)
		out := l.gsdRun(t, dir, 0, "restart", "service.op", "-auto-approve")
		expect(t, out, "service.op: batch 1 of 2: "+h0, "service.op: batch 2 of 2: "+h1, "host."+h0+": service.op: healthy", "host."+h1+": service.op: healthy")
		after := state(t)
		for _, h := range []string{h0, h1} {
			if after[h].PID == before[h].PID || after[h].State != "running" || after[h].Release.Version != "1.0.0" {
				t.Errorf("%s after restart: pid %d (before %d), %s, %s", h, after[h].PID, before[h].PID, after[h].State, after[h].Release.Version)
			}
		}

		out = l.gsdRun(t, dir, 0, "stop", "service.op", "-host", h0, "-auto-approve")
		expect(t, out, "running → stopped", "Stop service.op in 1 batch")
		if st := state(t); st[h0].State != "stopped" || st[h1].State != "running" {
			t.Errorf("after stop -host %s: %s is %s, %s is %s", h0, h0, st[h0].State, h1, st[h1].State)
		}
		if _, _, err := l.get(0, port, "/healthz"); err == nil {
			t.Errorf("%s still answers after stop", h0)
		}

		out = l.gsdRun(t, dir, 0, "start", "service.op", "-auto-approve")
		expect(t, out, "host."+h1+"  service.op 1.0.0: running, nothing to do", "stopped → running", "host."+h0+": service.op: healthy")
		if strings.Contains(out, "host."+h1+": service.op: update") {
			t.Errorf("start touched %s, where the service runs:\n%s", h1, out)
		}
		for i := range 2 {
			if code, _, err := l.get(i, port, "/healthz"); err != nil || code != 200 {
				t.Errorf("host %d /healthz after start: %d %v", i, code, err)
			}
		}
		l.gsdRun(t, dir, 0, "plan", "-detailed-exitcode")
	})

	t.Run("Unlock", func(t *testing.T) {
		// A lock whose holder the agent cannot judge (another machine's
		// name: it cannot see that process) is never taken over by itself.
		lock := filepath.Join(l.hosts[0].Prefix, "drive_c", "ProgramData", "gsd", "lock.json")
		since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		os.WriteFile(lock, fmt.Appendf(nil, `{"user":"ci","operator":"ci@gone-runner","machine":"GONE-RUNNER","pid":4242,"since":%q,"token":"t"}`, since.Format(time.RFC3339)), 0o644)
		t.Cleanup(func() { os.Remove(lock) })
		hcl("1.1.0")
		out := l.gsdRun(t, dir, 1, "apply", "-auto-approve")
		expect(t, out, "locked by ci@gone-runner")
		out = l.gsdRun(t, dir, 1, "unlock", h0)
		expect(t, out, "host."+h0+" is locked by ci@gone-runner (user ci, agent pid 4242 on GONE-RUNNER) since "+since.Format(time.RFC3339),
			"no terminal to confirm on: pass -force")
		if _, err := os.Stat(lock); err != nil {
			t.Fatalf("unlock without an answer removed the lock")
		}
		// At a terminal it asks first, and only "yes" breaks the lock.
		term := l.terminal(t, dir, "unlock", h0)
		expect(t, term.wait("Only 'yes' will be accepted"), "Break the lock of host."+h0+"?")
		term.keys("yes", "Enter")
		expect(t, term.wait("EXIT="), "Removed the lock of host."+h0+" held by ci@gone-runner", "EXIT=0")
		if _, err := os.Stat(lock); err == nil {
			t.Fatalf("the lock is still there after yes")
		}
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		expect(t, l.gsdRun(t, dir, 0, "unlock", h0, "-force"), "host."+h0+" is not locked.")
	})

	t.Run("SkipUnreachable", func(t *testing.T) {
		l.gsdRun(t, l.sbDir, 0, "sandbox", "fault", "-refuse", h1)
		t.Cleanup(func() { l.gsdRun(t, l.sbDir, 0, "sandbox", "fault", h1) })
		hcl("1.2.0")
		// By default one unreachable host stops the whole apply.
		out := l.gsdRun(t, dir, 1, "apply", "-auto-approve")
		expect(t, out, "some hosts could not be planned; nothing was applied")
		if _, body, _ := l.get(0, port, "/"); !strings.Contains(body, "1.1.0") {
			t.Errorf("%s changed though the apply stopped: %q", h0, body)
		}
		out = l.gsdRun(t, dir, exitSkipped, "plan", "-skip-unreachable", "-detailed-exitcode")
		expect(t, out, "Skipped: 1 host could not be reached and is skipped:", "host."+h1+": ")
		out = l.gsdRun(t, dir, exitSkipped, "apply", "-auto-approve", "-skip-unreachable")
		expect(t, out, "host."+h0+": service.op: replace complete", "Skipped: 1 host could not be reached and is skipped:")
		if strings.Contains(out, "host."+h1+": service.op") {
			t.Errorf("the unreachable host was worked on:\n%s", out)
		}
		if _, body, _ := l.get(0, port, "/"); !strings.Contains(body, "1.2.0") {
			t.Errorf("%s answers %q, want 1.2.0", h0, body)
		}
		stdout, _, code := l.split(t, dir, "hosts", "check", "-json")
		var hc views.HostsCheck
		if err := json.Unmarshal([]byte(stdout), &hc); err != nil || code != 1 || hc.Failed != 1 || len(hc.Hosts) != 2 ||
			!hc.Hosts[0].OK || hc.Hosts[0].ManagedServices != 1 || hc.Hosts[1].OK || hc.Hosts[1].Error == "" {
			t.Errorf("hosts check -json with %s unreachable: exit %d, %v\n%s", h1, code, err, stdout)
		}
		hcl("1.2.1")
		stdout, _, code = l.split(t, dir, "apply", "-auto-approve", "-skip-unreachable", "-json")
		if _, err := eventstest.Validate([]byte(stdout)); err != nil || code != exitSkipped {
			t.Fatalf("apply -json -skip-unreachable: exit %d, %v\n%s", code, err, stdout)
		}
		if s := summaryOf(t, stdout); s.Outcome != "partial" || len(s.SkippedHosts) != 1 || s.SkippedHosts[0].Host != h1 {
			t.Errorf("summary %+v", s)
		}
	})

	t.Run("LiveProgress", func(t *testing.T) {
		// The new release fails its health check on the first host until
		// the test has seen that host's spinner in the live area and
		// removes the flag file.
		hcl("1.3.0", "-unhealthy-if-exists", `C:\hello-fail-{version}.flag`)
		flag := l.hostFile(0, "hello-fail-1.3.0.flag")
		if err := os.WriteFile(flag, []byte("fail\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(flag) })
		term := l.terminal(t, dir, "apply", "-auto-approve")
		live := regexp.MustCompile(`(?m)^\S+ host\.` + regexp.QuoteMeta(h0) + `\s+service\.op: health check\s+\d+s\b`)
		position := regexp.MustCompile(`(?m)^service\.op: batch [12] of 2 \(`)
		var sawLive, sawPosition bool
		var screen string
		for !strings.Contains(screen, "EXIT=") {
			time.Sleep(100 * time.Millisecond)
			screen = term.screen()
			if live.MatchString(screen) && !sawLive {
				sawLive = true
				os.Remove(flag)
				t.Logf("the live area, seen in tmux:\n%s", screen[max(0, strings.LastIndex(screen, "service.op: batch 1 of 2 (")):])
			}
			sawPosition = sawPosition || position.MatchString(screen)
		}
		if !sawLive || !sawPosition {
			t.Errorf("never saw the live area (spinner line %v, rollout position %v); last screen:\n%s", sawLive, sawPosition, screen)
		}
		expect(t, screen, "EXIT=0", "Apply finished: 2 steps on 2 hosts", "host."+h1+": service.op: healthy")
		if live.MatchString(screen) {
			t.Errorf("the live area was left on the screen:\n%s", screen)
		}
	})
	t.Run("DestroyJSON", func(t *testing.T) {
		stdout, _, code := l.split(t, dir, "destroy", "-auto-approve", "-json")
		types, err := eventstest.Validate([]byte(stdout))
		if err != nil || code != 0 {
			t.Fatalf("destroy -json: exit %d, %v\n%s", code, err, stdout)
		}
		if s := summaryOf(t, stdout); s.Operation != "destroy" || s.Outcome != "succeeded" || s.Changes == nil || s.Changes.Destroy != 4 {
			t.Errorf("summary %+v", s)
		}
		if !strings.Contains(strings.Join(types, " "), "apply_complete") {
			t.Errorf("no apply_complete event for the deletions:\n%s", stdout)
		}
	})
}
