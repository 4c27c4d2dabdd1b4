//go:build windows

package scm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
)

// wrappedSpec runs the console fixture under gsd-agent.exe service-host.
func wrappedSpec(name, artifact, marker string, stopMS int64, extra ...string) protocol.ServiceSpec {
	return protocol.ServiceSpec{
		Name: name, Mode: protocol.ModeWrapped, Artifact: artifact, Start: protocol.StartManual,
		Args:        append([]string{"-marker", marker}, extra...),
		Env:         map[string]string{"GSD_FIXTURE_ENV": "from-wrapper"},
		StopTimeout: stopMS,
		Wrapper:     &protocol.WrapperSpec{LogMaxBytes: 4096, LogKeep: 2, BackoffInitialMS: 100, BackoffMaxMS: 800},
	}
}

func TestWrappedConsoleProgramOnRealSCM(t *testing.T) {
	root := testfs.TempDir(t)
	c := newClient(t, root)
	name := serviceName("wrapped")
	marker := filepath.Join(root, "wrapped-marker.txt")
	art, err := c.StageBytes("console.exe", readFixture(t, "console.exe"))
	must(t, err)
	t.Cleanup(func() { c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name}, nil) })

	// Crashing every 100 ms with 300 lines of output per start: the wrapper
	// must restart it with growing, bounded delays and rotate its logs.
	spec := wrappedSpec(name, art.SHA256, marker, 3000, "-lines", "300", "-line-bytes", "100", "-crash-after", "100ms")
	id1, _ := deploy(t, c, spec, protocol.EffectNone)
	f := facts(t, c, name)
	if !strings.HasSuffix(strings.ToLower(f.Config.BinaryPath), "gsd-agent.exe") || f.Config.Args[0] != "service-host" {
		t.Fatalf("wrapped service does not run the service host: %q %q", f.Config.BinaryPath, f.Config.Args)
	}
	if f.BinarySHA256 != art.SHA256 {
		t.Fatalf("binary sha %s, want the wrapped program's %s", f.BinarySHA256, art.SHA256)
	}
	activate(t, c, name, id1, protocol.EffectStart, 30000)
	logDir := filepath.Join(root, "services", name, "logs")
	eventually(t, "six crashes", func() bool { return countPrefix(markerLines(marker), "crash") >= 6 })

	lines := markerLines(marker)
	if !strings.Contains(lines[0], "env=from-wrapper") {
		t.Fatalf("wrapper did not inject the environment: %q", lines[0])
	}
	// Its own working folder, which its account may write to.
	wantDir := filepath.Join(root, "services", name, "work")
	if !strings.Contains(strings.ToLower(lines[0]), strings.ToLower("dir="+wantDir)) {
		t.Fatalf("working directory: %q, want %s", lines[0], wantDir)
	}
	wrapperLog, _ := readFile(filepath.Join(logDir, "wrapper.log"))
	delays := regexp.MustCompile(`restarting in (\S+)`).FindAllStringSubmatch(wrapperLog, -1)
	var got []string
	for _, d := range delays {
		got = append(got, d[1])
	}
	if len(got) < 5 || strings.Join(got[:5], ",") != "100ms,200ms,400ms,800ms,800ms" {
		t.Fatalf("restart delays %v, want 100ms,200ms,400ms,800ms,800ms...", got)
	}
	if !strings.Contains(wrapperLog, "exited with code 3") {
		t.Fatalf("exit code not recorded:\n%s", wrapperLog)
	}
	f = facts(t, c, name)
	if f.Wrapper == nil || f.Wrapper.Starts < 6 || f.Wrapper.LastExitCode == nil {
		t.Fatalf("wrapper status in facts: %+v", f.Wrapper)
	}
	if f.Status.State != agent.StateRunning {
		t.Fatalf("the service itself must stay running while its program crashes: %+v", f.Status)
	}
	for _, stream := range []string{"stdout.log", "stderr.log"} {
		for _, suffix := range []string{"", ".1", ".2"} {
			fi, err := os.Stat(filepath.Join(logDir, stream+suffix))
			if err != nil {
				t.Fatalf("log %s%s: %v", stream, suffix, err)
			}
			if fi.Size() > 4096 {
				t.Fatalf("log %s%s is %d bytes, over the 4096 limit", stream, suffix, fi.Size())
			}
		}
		if _, err := os.Stat(filepath.Join(logDir, stream+".3")); err == nil {
			t.Fatalf("%s.3 exists; only 2 rotated files should be kept", stream)
		}
	}

	// A well-behaved program stops gracefully on Ctrl-Break.
	marker2 := marker + ".2"
	activate(t, c, name, id1, protocol.EffectStop, 0)
	id2, _ := deploy(t, c, wrappedSpec(name, art.SHA256, marker2, 3000), protocol.EffectStart)
	eventually(t, "the program to start", func() bool { return countPrefix(markerLines(marker2), "start") == 1 })
	activate(t, c, name, id2, protocol.EffectStop, 0)
	stopped := strings.Join(markerLines(marker2), "\n")
	f = facts(t, c, name)
	if f.Status.State != agent.StateStopped || f.Wrapper.ChildPID != 0 {
		t.Fatalf("after stop: %+v %+v", f.Status, f.Wrapper)
	}
	t.Logf("how the wrapper stopped the program: %s", f.Wrapper.LastStop)
	if scm.IsWine() {
		// Wine cannot deliver Ctrl-Break (GenerateConsoleCtrlEvent fails);
		// the wrapper must say so and kill at once instead of hanging.
		if !strings.HasPrefix(f.Wrapper.LastStop, "killed: GenerateConsoleCtrlEvent") {
			t.Fatalf("last stop %q, want the Wine Ctrl-Break gap reported", f.Wrapper.LastStop)
		}
	} else if !strings.Contains(stopped, "graceful") || f.Wrapper.LastStop != "graceful" {
		t.Fatalf("program was not stopped gracefully: %q, marker:\n%s", f.Wrapper.LastStop, stopped)
	}

	// A program that ignores Ctrl-Break is killed after stop_timeout, and
	// the service still stops well within the SCM's wait.
	marker3 := marker + ".3"
	id3, _ := deploy(t, c, wrappedSpec(name, art.SHA256, marker3, 1000, "-ignore-interrupt"), protocol.EffectStart)
	eventually(t, "the program to start", func() bool { return countPrefix(markerLines(marker3), "start") == 1 })
	activate(t, c, name, id3, protocol.EffectStop, 0)
	f = facts(t, c, name)
	want := "killed after stop timeout"
	if scm.IsWine() {
		want = "killed: GenerateConsoleCtrlEvent"
	}
	if f.Status.State != agent.StateStopped || !strings.HasPrefix(f.Wrapper.LastStop, want) {
		t.Fatalf("stubborn program: state %s, last stop %q, want %q", f.Status.State, f.Wrapper.LastStop, want)
	}
	pid := regexp.MustCompile(`start pid=(\d+)`).FindStringSubmatch(markerLines(marker3)[0])[1]
	if processRunning(pid) {
		t.Fatalf("program pid %s still runs after stop", pid)
	}

	must(t, c.Call(protocol.OpDeleteService, protocol.ServiceRef{Service: name, Purge: true}, nil))
	if obs, _ := scm.New().Query(name); obs.Installed {
		t.Fatal("still installed after delete")
	}
}

// processRunning asks Windows whether pid is a live process.
func processRunning(pid string) bool {
	var n uint32
	fmt.Sscan(pid, &n)
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, n)
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	if windows.GetExitCodeProcess(h, &code) != nil {
		return false
	}
	return code == 259 // STILL_ACTIVE
}
