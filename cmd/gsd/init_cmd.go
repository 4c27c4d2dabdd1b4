package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gsd-deploy/gsd/config"
)

func init() {
	register(command{name: "init", summary: "Write a commented starter gsd.hcl", run: runInit})
}

func runInit(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "init", "[DIR]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir := "."
	if fs.NArg() > 1 {
		return errors.New("init takes at most one directory")
	}
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	name := filepath.Join(dir, "gsd.hcl")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; gsd init never overwrites a file", name)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(config.Starter); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Wrote %s. Edit its hosts and services, then run 'gsd validate'.\n", name)
	return nil
}
