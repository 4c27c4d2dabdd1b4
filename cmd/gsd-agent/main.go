package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/scm"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/task"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run decides the exit code in one place: 0 ok, 1 failure, 2 usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdin, stdout, stderr)
	case "service-host":
		err = serviceHost(args, stderr)
	case "task-host":
		var code int
		if code, err = taskHost(args, stderr); err == nil {
			return code
		}
	case "version":
		fmt.Fprintf(stdout, "gsd-agent %s (protocol %d, %s/%s)\n", agent.Version, protocol.Version, runtime.GOOS, runtime.GOARCH)
	default:
		fmt.Fprintf(stderr, "gsd-agent: unknown command %q (want serve, service-host, task-host or version)\n", cmd)
		return 2
	}
	var usage usageError
	if errors.As(err, &usage) {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "gsd-agent %s: %v\n", cmd, err)
		}
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "gsd-agent %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// defaultRoot is C:\ProgramData\gsd on Windows. Elsewhere there is no
// agreed place, so -root must be given.
func defaultRoot() string {
	if pd := os.Getenv("ProgramData"); runtime.GOOS == "windows" && pd != "" {
		return filepath.Join(pd, "gsd")
	}
	return ""
}

func serve(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", defaultRoot(), "state directory")
	maxLine := fs.Int("max-line", 0, "longest request line accepted, in bytes (0: protocol default)")
	keep := fs.Int("keep-releases", 0, "releases kept per service for rollback (0: as in state.json, default 5)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *root == "" {
		return usageError{errors.New("-root is required on this system")}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	a := agent.New(agent.Options{
		Root:         *root,
		Services:     scm.New(),
		ServiceHost:  self,
		MaxLine:      *maxLine,
		KeepReleases: *keep,
	})
	return a.Serve(context.Background(), stdin, stdout)
}

func serviceHost(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("service-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", defaultRoot(), "state directory")
	name := fs.String("service", "", "name of the wrapped service")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *name == "" || *root == "" {
		return usageError{errors.New("-service and -root are required")}
	}
	layout := state.Layout{Root: *root}
	cfg, err := servicehost.Load(layout.WrapperConfig(*name))
	if err != nil {
		return err
	}
	// The service host has no console or client to report to; its own
	// messages go to wrapper.log beside the program's logs.
	log, err := servicehost.OpenRotating(filepath.Join(cfg.LogDir, "wrapper.log"), cfg.LogMaxBytes, cfg.LogKeep)
	if err != nil {
		return err
	}
	defer log.Close()
	logf := func(format string, a ...any) {
		fmt.Fprintf(log, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, a...))
	}
	logf("service host for %s starting (agent %s)", *name, agent.Version)
	err = servicehost.RunService(*name, cfg, logf)
	logf("service host for %s exiting: %v", *name, err)
	return err
}

// taskHost runs one run of a scheduled task, as its action asks: the
// task's program, with its environment and logs; the run's exit code is
// the program's, which the Task Scheduler records as its result.
func taskHost(args []string, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("task-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", defaultRoot(), "state directory")
	name := fs.String("task", "", "name of the task")
	if err := fs.Parse(args); err != nil {
		return 0, usageError{err}
	}
	if *name == "" || *root == "" {
		return 0, usageError{errors.New("-task and -root are required")}
	}
	log, err := servicehost.OpenRotating(task.HostLog(*root, *name), servicehost.DefaultLogMaxBytes, servicehost.DefaultLogKeep)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	logf := func(format string, a ...any) {
		fmt.Fprintf(log, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, a...))
	}
	logf("task host for %s starting (agent %s)", *name, agent.Version)
	code, err := task.RunHost(context.Background(), *root, *name, logf)
	logf("task host for %s exiting: code %d, %v", *name, code, err)
	return code, err
}

// usageError marks a mistake in the command line, which exits 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }
