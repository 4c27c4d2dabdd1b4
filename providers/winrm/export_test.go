package winrm

import (
	"context"

	mz "github.com/masterzen/winrm"
)

// SignalForTest sends a Signal for a shell the host does not hold, to
// provoke a fault.
func SignalForTest(ctx context.Context, t *Transport, shellID string) error {
	_, err := t.post(ctx, "Signal", mz.NewSignalRequest(t.url, shellID, "00000000-0000-0000-0000-000000000001", t.params))
	return err
}

// AddIdleShellForTest offers a shell id the host does not hold, as a
// shell that outlived the host's IdleTimeout would be.
func AddIdleShellForTest(t *Transport, shellID string) {
	t.mu.Lock()
	t.idle = append(t.idle, shellID)
	t.mu.Unlock()
}
