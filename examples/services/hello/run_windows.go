//go:build windows

package main

import (
	"log"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/windows/svc"
)

// run serves under the service manager when started by it, else in the
// foreground. svc.IsWindowsService cannot tell under Wine, so when it says
// no the service dispatcher is tried anyway: a process the service manager
// did not start gets an error from it (at once on Windows, after about ten
// seconds under Wine) and then serves in the foreground.
func run(s *server, asService bool) error {
	if !s.foreground {
		is, err := svc.IsWindowsService()
		if asService || (err == nil && is) {
			return svc.Run("hello", &handler{s: s})
		}
		if err := svc.Run("hello", &handler{s: s}); err == nil {
			return nil
		}
	}
	time.Sleep(s.startDelay)
	if err := s.start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	s.stop(10 * time.Second)
	return nil
}

type handler struct{ s *server }

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	for waited := time.Duration(0); waited < h.s.startDelay; waited += time.Second {
		// Each report promises the next within its wait hint.
		status <- svc.Status{State: svc.StartPending, CheckPoint: uint32(waited/time.Second) + 1, WaitHint: 2000}
		time.Sleep(min(time.Second, h.s.startDelay-waited))
	}
	if err := h.s.start(); err != nil {
		log.Print(err)
		return true, 1
	}
	accepts := svc.AcceptStop | svc.AcceptShutdown | svc.AcceptParamChange
	status <- svc.Status{State: svc.Running, Accepts: accepts}
	for c := range req {
		switch c.Cmd {
		case svc.Interrogate:
			status <- c.CurrentStatus
		case svc.ParamChange:
			if err := h.s.reload(); err != nil {
				log.Print(err)
			}
			status <- c.CurrentStatus
		case svc.Stop, svc.Shutdown:
			status <- svc.Status{State: svc.StopPending}
			h.s.stop(10 * time.Second)
			return false, 0
		}
	}
	return false, 0
}
