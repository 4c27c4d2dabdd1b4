//go:build !windows

package servicehost

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// RunService runs cfg's program in the foreground until SIGINT or SIGTERM;
// it lets the wrapper be exercised where there is no service manager.
func RunService(_ string, cfg Config, logf func(string, ...any)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sup := NewSupervisor(cfg)
	sup.Logf = logf
	return sup.Run(ctx)
}
