//go:build windows

package servicehost

import (
	"context"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/windows/svc"
)

// RunService runs cfg's program as the Windows service name until the SCM
// stops it. It must be called from a process the SCM started; gsd passes an
// explicit "service-host" argument for that instead of svc.IsWindowsService,
// which answers false under Wine.
func RunService(name string, cfg Config, logf func(string, ...any)) error {
	signal.Notify(make(chan os.Signal, 1), os.Interrupt)
	return svc.Run(name, &handler{cfg: cfg.withDefaults(), logf: logf})
}

type handler struct {
	cfg  Config
	logf func(string, ...any)
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := NewSupervisor(h.cfg)
	sup.Logf = h.logf
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	accepts := svc.AcceptStop | svc.AcceptShutdown
	status <- svc.Status{State: svc.Running, Accepts: accepts}
	for {
		select {
		case err := <-done:
			// Only a program that cannot be started at all ends Run early.
			h.logf("service host giving up: %v", err)
			status <- svc.Status{State: svc.StopPending}
			return true, 1
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				hint := time.Duration(h.cfg.StopTimeoutMS)*time.Millisecond + 5*time.Second
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(hint.Milliseconds())}
				cancel()
				<-done
				return false, 0
			}
		}
	}
}
