//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// run serves in the foreground until interrupted; SIGHUP reloads.
func run(s *server, _ bool) error {
	time.Sleep(s.startDelay)
	if err := s.start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	for v := range sig {
		if v == syscall.SIGHUP {
			_ = s.reload()
			continue
		}
		break
	}
	s.stop(10 * time.Second)
	return nil
}
