//go:build !windows

package scm

import (
	"errors"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

var errNotWindows = errors.New("no Windows service manager on this system")

type unsupported struct{}

// New returns a ServiceControl that reports every service as unreadable,
// so an agent built for Linux (tests, dry runs) still serves facts from its
// state.
func New() agent.ServiceControl { return unsupported{} }

func (unsupported) Query(string) (agent.Observed, error) { return agent.Observed{}, errNotWindows }
func (unsupported) Install(string, agent.InstallConfig) (map[string]string, error) {
	return nil, errNotWindows
}
func (unsupported) Reconfigure(string, agent.InstallConfig) (map[string]string, error) {
	return nil, errNotWindows
}
func (unsupported) Remove(string) error { return errNotWindows }
func (unsupported) SetRecovery(string, protocol.Recovery) (map[string]string, error) {
	return nil, errNotWindows
}
func (unsupported) Start(string, time.Duration) error { return errNotWindows }
func (unsupported) Stop(string, time.Duration) error  { return errNotWindows }
func (unsupported) ParamChange(string) error          { return errNotWindows }
func (unsupported) ActiveDependents(string) ([]string, error) {
	return nil, errNotWindows
}
