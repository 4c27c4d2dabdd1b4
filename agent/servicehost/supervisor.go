package servicehost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Supervisor keeps one wrapped program running until its context ends.
type Supervisor struct {
	cfg Config
	// Logf receives the wrapper's own messages (the service host sends them
	// to wrapper.log next to the program's logs).
	Logf   func(format string, args ...any)
	status protocol.WrapperStatus
}

// NewSupervisor returns a supervisor for cfg (defaults filled).
func NewSupervisor(cfg Config) *Supervisor {
	return &Supervisor{cfg: cfg.withDefaults(), Logf: func(string, ...any) {}}
}

// Run starts the program and restarts it whenever it exits, until ctx is
// cancelled; then it stops the program gracefully (see stopChild) and
// returns. It returns early only if the program cannot be started at all
// the first time, so a broken install fails the service start visibly.
func (s *Supervisor) Run(ctx context.Context) error {
	stdout, stderr, err := s.openLogs()
	if err != nil {
		return err
	}
	defer stdout.Close()
	defer stderr.Close()
	backoff := NewBackoff(ms(s.cfg.BackoffInitialMS), ms(s.cfg.BackoffMaxMS))
	for first := true; ; first = false {
		cmd := s.command(stdout, stderr)
		started := time.Now()
		if err := cmd.Start(); err != nil {
			if first {
				return fmt.Errorf("start %s: %w", s.cfg.Program, err)
			}
			s.Logf("start %s: %v", s.cfg.Program, err)
		} else {
			tree, terr := startTree(cmd)
			if terr != nil {
				s.Logf("cannot track the processes pid %d starts (%v); only pid %d itself is killed on stop", cmd.Process.Pid, terr, cmd.Process.Pid)
			}
			s.status.Starts++
			s.status.ChildPID = cmd.Process.Pid
			s.status.NextBackoff = 0
			s.saveStatus()
			s.Logf("started %s, pid %d (start %d)", s.cfg.Program, cmd.Process.Pid, s.status.Starts)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				s.recordExit(cmd, err)
				s.endTree(cmd, tree)
			case <-ctx.Done():
				s.stopChild(cmd, tree, exited)
				s.endTree(cmd, tree)
				return nil
			}
		}
		wait := backoff.After(time.Since(started))
		s.status.NextBackoff = wait.Milliseconds()
		s.saveStatus()
		s.Logf("restarting in %s", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
	}
}

// RunOnce runs the program once, to its end, as Run runs it each time
// (environment, rotated logs, the tree of processes it starts, status
// file), and returns its exit code: what a scheduled task's run is.
// When ctx ends first the program is stopped as Run stops it.
func (s *Supervisor) RunOnce(ctx context.Context) (int, error) {
	stdout, stderr, err := s.openLogs()
	if err != nil {
		return -1, err
	}
	defer stdout.Close()
	defer stderr.Close()
	cmd := s.command(stdout, stderr)
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start %s: %w", s.cfg.Program, err)
	}
	tree, terr := startTree(cmd)
	if terr != nil {
		s.Logf("cannot track the processes pid %d starts (%v); only pid %d itself is killed on stop", cmd.Process.Pid, terr, cmd.Process.Pid)
	}
	s.status.Starts++
	s.status.ChildPID = cmd.Process.Pid
	s.saveStatus()
	s.Logf("started %s, pid %d", s.cfg.Program, cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		s.recordExit(cmd, err)
	case <-ctx.Done():
		s.stopChild(cmd, tree, exited)
	}
	s.endTree(cmd, tree)
	return *s.status.LastExitCode, nil
}

// openLogs opens the program's rotated stdout and stderr logs.
func (s *Supervisor) openLogs() (stdout, stderr *RotatingFile, err error) {
	stdout, err = OpenRotating(filepath.Join(s.cfg.LogDir, "stdout.log"), s.cfg.LogMaxBytes, s.cfg.LogKeep)
	if err != nil {
		return nil, nil, err
	}
	stderr, err = OpenRotating(filepath.Join(s.cfg.LogDir, "stderr.log"), s.cfg.LogMaxBytes, s.cfg.LogKeep)
	if err != nil {
		stdout.Close()
		return nil, nil, err
	}
	stdout.OnRotateError = func(err error) { s.Logf("%v", err) }
	stderr.OnRotateError = stdout.OnRotateError
	return stdout, stderr, nil
}

// childWaitDelay bounds how long Wait waits, once the program has exited,
// for processes it started to let go of its stdout/stderr pipes; without
// it a stop or restart waits for as long as any of them lives.
const childWaitDelay = 2 * time.Second

func (s *Supervisor) command(stdout, stderr *RotatingFile) *exec.Cmd {
	cmd := exec.Command(s.cfg.Program, s.cfg.Args...)
	cmd.Dir = s.cfg.Dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = childWaitDelay
	// The wrapper injects the environment itself: the SCM's per-service
	// Environment value is not honoured everywhere (Wine ignores it).
	cmd.Env = mergeEnv(os.Environ(), s.cfg.Env)
	prepareChild(cmd)
	return cmd
}

// endTree kills whatever the program started and left running once the
// program itself is gone, so a restart or stop leaves no orphans.
func (s *Supervisor) endTree(cmd *exec.Cmd, tree *procTree) {
	if err := tree.kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.Logf("ending processes left by pid %d: %v", cmd.Process.Pid, err)
	}
	tree.close()
}

// stopChild asks the program to quit and kills it, with every process it
// started, if it has not exited within the stop timeout.
func (s *Supervisor) stopChild(cmd *exec.Cmd, tree *procTree, exited chan error) {
	timeout := ms(s.cfg.StopTimeoutMS)
	if err := interruptChild(cmd); err != nil {
		// Wine cannot deliver Ctrl-Break; there is no gentler signal a
		// plain console program understands, so kill at once rather than
		// wait out a timeout that cannot end well.
		s.Logf("cannot ask pid %d to stop (%v); killing it", cmd.Process.Pid, err)
		tree.kill()
		s.status.LastStop = "killed: " + err.Error()
		s.recordExit(cmd, <-exited)
		return
	}
	select {
	case err := <-exited:
		s.status.LastStop = "graceful"
		s.recordExit(cmd, err)
		s.Logf("pid %d stopped gracefully", cmd.Process.Pid)
	case <-time.After(timeout):
		// The whole tree: a process the program started may hold its
		// output pipes, and Wait would wait for it.
		tree.kill()
		err := <-exited
		s.status.LastStop = "killed after stop timeout"
		s.recordExit(cmd, err)
		s.Logf("pid %d did not stop within %s; killed", cmd.Process.Pid, timeout)
	}
}

func (s *Supervisor) recordExit(cmd *exec.Cmd, err error) {
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		s.Logf("wait for pid %d: %v", cmd.Process.Pid, err)
	}
	s.status.LastExitCode = &code
	s.status.LastExit = time.Now().UTC()
	s.status.ChildPID = 0
	s.saveStatus()
	s.Logf("pid %d exited with code %d", cmd.Process.Pid, code)
}

func (s *Supervisor) saveStatus() {
	if s.cfg.StatusFile == "" {
		return
	}
	s.status.Updated = time.Now().UTC()
	b, _ := json.Marshal(s.status)
	if err := atomicfile.WriteFile(s.cfg.StatusFile, b); err != nil {
		s.Logf("write status: %v", err)
	}
}

// ReadStatus reads what a supervisor recorded in its status file, or
// nil when there is none (yet) or it cannot be read.
func ReadStatus(path string) *protocol.WrapperStatus {
	// Shared for delete: the supervisor replaces this file while it runs.
	b, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil
	}
	var ws protocol.WrapperStatus
	if json.Unmarshal(b, &ws) != nil {
		return nil
	}
	return &ws
}

// mergeEnv overlays extra on base; on Windows names compare without case.
func mergeEnv(base []string, extra map[string]string) []string {
	if len(extra) == 0 {
		return base
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		name := kv
		for i := 1; i < len(kv); i++ { // from 1: Windows has "=C:=..." entries
			if kv[i] == '=' {
				name = kv[:i]
				break
			}
		}
		if _, overridden := lookupEnvKey(extra, name); !overridden {
			out = append(out, kv)
		}
	}
	for _, k := range keys {
		out = append(out, k+"="+extra[k])
	}
	return out
}
