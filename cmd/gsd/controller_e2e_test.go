package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// availability polls a service's /healthz on every host from the moment
// it is made, and reports the longest time each host did not answer 200.
type availability struct {
	mu      sync.Mutex
	longest map[int]time.Duration
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (l *rolloutLab) watch(port int, hosts ...int) *availability {
	a := &availability{longest: map[int]time.Duration{}, stop: make(chan struct{})}
	for _, i := range hosts {
		a.wg.Go(func() {
			var downSince time.Time
			for {
				select {
				case <-a.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				code, _, err := l.get(i, port, "/healthz")
				now := time.Now()
				switch {
				case err == nil && code == 200 && !downSince.IsZero():
					a.mu.Lock()
					a.longest[i] = max(a.longest[i], now.Sub(downSince))
					a.mu.Unlock()
					downSince = time.Time{}
				case (err != nil || code != 200) && downSince.IsZero():
					downSince = now
				}
			}
		})
	}
	return a
}

func (a *availability) done() map[int]time.Duration {
	close(a.stop)
	a.wg.Wait()
	return a.longest
}

// startGsd runs gsd and calls onLine with each output line as it comes,
// with the process, so a test can kill it at a chosen moment.
func (l *rolloutLab) startGsd(t testing.TB, dir string, onLine func(line string, p *os.Process), args ...string) func() (string, int) {
	t.Helper()
	cmd := exec.Command(l.gsd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), l.env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			onLine(sc.Text(), cmd.Process)
		}
	}()
	return func() (string, int) {
		err := cmd.Wait()
		pw.Close()
		<-read
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = -int(ws.Signal())
			}
		} else if err != nil {
			t.Fatalf("gsd %v: %v", args, err)
		}
		return out.String(), code
	}
}

// lockFile is host i's lock.json, seen from Linux.
func (l *rolloutLab) lockFile(i int) string {
	return l.hostFile(i, filepath.Join("ProgramData", "gsd", "lock.json"))
}

// unlockedWithin waits until no host holds a lock, and returns how long
// each took from since.
func (l *rolloutLab) unlockedWithin(t *testing.T, since time.Time, bound time.Duration, hosts ...int) map[int]time.Duration {
	t.Helper()
	took := map[int]time.Duration{}
	for _, i := range hosts {
		for {
			if _, err := os.Stat(l.lockFile(i)); os.IsNotExist(err) {
				took[i] = time.Since(since)
				break
			}
			if time.Since(since) > bound {
				b, _ := os.ReadFile(l.lockFile(i))
				t.Fatalf("%s is still locked %s after gsd died: %s", l.hosts[i].Name, bound, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return took
}

// controllerBound is the documented bound for a host to be released after
// gsd dies: three missed heartbeats (15 s) after the operation in flight
// ends; the operations here end within seconds.
const controllerBound = 45 * time.Second

// TestControllerDeathEndToEnd kills gsd (SIGKILL) while it uploads, right
// after a service was stopped, and during a health gate, and checks that
// within the documented bound every host runs one whole release and is
// unlocked, and that the next apply completes; and that SIGTERM stops a
// rollout as the first Ctrl-C does.
func TestControllerDeathEndToEnd(t *testing.T) {
	l := startRolloutLab(t, 2)
	h := func(i int) string { return l.hosts[i].Name }
	both := []int{0, 1}
	destroyAt := func(t *testing.T, dir string) {
		t.Cleanup(func() {
			if out, code := l.gsdCode(t, dir, "destroy", "-auto-approve"); code != 0 {
				t.Errorf("destroy: exit %d\n%s", code, out)
			}
		})
	}
	versions := func(name string, port int, rollout string, args ...string) (hcRelease, hcRelease) {
		v1 := hcRelease{name: name, version: "1.0.0", binary: "1.0.0", mode: "wrapped", display: name + " v1", port: port,
			env: map[string]string{"MODE": "one"}, args: args, file: "greeting: " + name + " one\n", rollout: rollout}
		v2 := v1
		v2.version, v2.binary, v2.display, v2.file = "2.0.0", "2.0.0", name+" v2", "greeting: "+name+" two\n"
		v2.env = map[string]string{"MODE": "two"}
		return v1, v2
	}
	// whole checks that host i runs v1 or v2 entirely, and that gsd plan
	// with that release's configuration finds nothing to change.
	whole := func(t *testing.T, dir string, i int, v1, v2 hcRelease) hcRelease {
		t.Helper()
		st := l.status(t, dir)
		s := st[h(i)][v1.name]
		if s == nil || s.Release == nil {
			t.Fatalf("%s: %s is not deployed", h(i), v1.name)
		}
		on := v1
		if s.Release.Version == v2.version {
			on = v2
		}
		if s.State != "running" {
			t.Errorf("%s: %s is %s, want running", h(i), v1.name, s.State)
		}
		if code, body, err := l.get(i, on.port, "/"); err != nil || code != 200 || !strings.Contains(body, "hello from "+on.binary) {
			t.Errorf("%s answers %d %q %v, want hello from %s", h(i), code, body, err, on.binary)
		}
		if got := l.managedFile(t, i, on.name); got != on.file {
			t.Errorf("%s runs %s with hello.yaml %q, want %q: a mixed release", h(i), on.version, got, on.file)
		}
		return on
	}
	// afterDeath checks the hosts once gsd is dead, then finishes the job.
	afterDeath := func(t *testing.T, dir string, killed time.Time, seen *availability, v1, v2 hcRelease) {
		t.Helper()
		locked := l.unlockedWithin(t, killed, controllerBound, both...)
		down := seen.done()
		for _, i := range both {
			on := whole(t, dir, i, v1, v2)
			t.Logf("%s: unlocked %.1fs after gsd died; down at most %.1fs; runs %s", h(i), locked[i].Seconds(), down[i].Seconds(), on.version)
			writeHCL(t, dir, on.hcl(l.repo))
			if out, code := l.gsdCode(t, dir, "plan", "-detailed-exitcode", "-host", h(i)); code != 0 {
				t.Errorf("%s: plan with %s's configuration: exit %d\n%s", h(i), on.version, code, out)
			}
		}
		writeHCL(t, dir, v2.hcl(l.repo))
		if out, code := l.gsdCode(t, dir, "apply", "-auto-approve"); code != 0 {
			t.Fatalf("the next apply: exit %d\n%s", code, out)
		}
		if out, code := l.gsdCode(t, dir, "plan", "-detailed-exitcode"); code != 0 {
			t.Fatalf("plan after the next apply: exit %d\n%s", code, out)
		}
		for _, i := range both {
			if on := whole(t, dir, i, v1, v2); on.version != v2.version {
				t.Errorf("%s runs %s after the next apply", h(i), on.version)
			}
		}
	}
	killAt := func(t *testing.T, dir string, when func(string) bool) (time.Time, string) {
		t.Helper()
		var once sync.Once
		var killed time.Time
		wait := l.startGsd(t, dir, func(line string, p *os.Process) {
			if when(line) {
				once.Do(func() {
					killed = time.Now()
					p.Kill()
				})
			}
		}, "apply", "-auto-approve")
		out, code := wait()
		if killed.IsZero() {
			t.Fatalf("gsd ended (exit %d) before the moment to kill it:\n%s", code, out)
		}
		return killed, out
	}

	for _, c := range []struct {
		name, service string
		port          int
		args          []string
		// slow delays every WinRM answer, so an upload lasts long
		// enough to be caught.
		slow bool
		at   func(line string) bool
	}{
		{"KilledWhileUploading", "ka", 8201, nil, true, func(line string) bool { return strings.Contains(line, ": uploading ") }},
		{"KilledAfterStop", "kb", 8202, nil, false, func(line string) bool { return line == "host."+h(0)+": stopping kb" }},
		{"KilledDuringHealthGate", "kc", 8203, []string{"-start-delay", "4s"}, false, func(line string) bool { return line == "host."+h(0)+": service.kc: replace complete" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := l.caseDir(t)
			destroyAt(t, dir)
			v1, v2 := versions(c.service, c.port, "    max_parallel = 2", c.args...)
			writeHCL(t, dir, v1.hcl(l.repo))
			l.gsdRun(t, dir, 0, "apply", "-auto-approve")
			writeHCL(t, dir, v2.hcl(l.repo))
			if c.slow {
				for _, i := range both {
					l.gsdRun(t, l.sbDir, 0, "sandbox", "fault", "-delay-ms", "300", h(i))
				}
			}
			seen := l.watch(v1.port, both...)
			killed, out := killAt(t, dir, c.at)
			if c.slow {
				for _, i := range both {
					l.gsdRun(t, l.sbDir, 0, "sandbox", "fault", h(i))
				}
			}
			t.Logf("gsd killed:\n%s", out)
			afterDeath(t, dir, killed, seen, v1, v2)
		})
	}

	t.Run("SIGTERMStopsLikeCtrlC", func(t *testing.T) {
		dir := l.caseDir(t)
		destroyAt(t, dir)
		v1, v2 := versions("kd", 8204, "    max_parallel = 1")
		writeHCL(t, dir, v1.hcl(l.repo))
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		before := l.status(t, dir)
		writeHCL(t, dir, v2.hcl(l.repo))
		var once sync.Once
		wait := l.startGsd(t, dir, func(line string, p *os.Process) {
			if line == "host."+h(0)+": stopping kd" {
				once.Do(func() { p.Signal(syscall.SIGTERM) })
			}
		}, "apply", "-auto-approve")
		out, code := wait()
		ended := time.Now()
		for _, want := range []string{"Stopping after the steps in flight", "host." + h(0) + ": service.kd: healthy", "1 host failed"} {
			if !strings.Contains(out, want) {
				t.Errorf("after SIGTERM the output lacks %q:\n%s", want, out)
			}
		}
		if code != 1 || strings.Contains(out, "batch 2 of 2") {
			t.Errorf("SIGTERM: exit %d, want 1 and no second batch:\n%s", code, out)
		}
		// Released on the way out, not by the agents' watchdogs.
		if took := l.unlockedWithin(t, ended, 2*time.Second, both...); took[0] > 2*time.Second {
			t.Errorf("locks held %v after gsd exited", took)
		}
		st := l.status(t, dir)
		if on := whole(t, dir, 0, v1, v2); on.version != v2.version {
			t.Errorf("%s: the step in flight did not finish: runs %s", h(0), on.version)
		}
		if a, b := snap(before[h(1)]["kd"]), snap(st[h(1)]["kd"]); a != b {
			t.Errorf("%s changed though the run stopped before it: %+v → %+v", h(1), a, b)
		}
		l.gsdRun(t, dir, 0, "apply", "-auto-approve")
		l.gsdRun(t, dir, 0, "plan", "-detailed-exitcode")
	})
}
