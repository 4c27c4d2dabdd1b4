package providers

import (
	"context"
	"fmt"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/ssh"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm"
)

// Dial reaches host over the transport its configuration names and
// connects to its agent, installing the agent first when needed.
func Dial(ctx context.Context, host *config.Host, opts Options) (*Host, error) {
	var (
		t   transport.Transport
		err error
	)
	// A host may describe both ways in; its transport says which is used.
	switch {
	case host.Transport() == "ssh" && host.SSH != nil:
		t, err = ssh.New(host, ssh.Options{})
	case host.Transport() == "winrm" && host.WinRM != nil:
		t, err = winrm.New(host, winrm.Options{})
	default:
		err = fmt.Errorf("host %s: no %q block describes how to reach it", host.Name, host.Transport())
	}
	if err != nil {
		return nil, err
	}
	return Connect(ctx, host.Name, t, opts)
}
