package agent

import (
	"errors"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// ErrServiceNotInstalled is returned by ServiceControl for a service the
// service manager does not know.
var ErrServiceNotInstalled = errors.New("service is not installed")

// ServiceControl is what the agent needs from a service manager.
type ServiceControl interface {
	// Query reports a service; Observed.Installed is false if it does not
	// exist. Settings the host cannot report go to Observed.Unreadable
	// instead of failing the query.
	Query(name string) (Observed, error)
	// Install creates a service; Reconfigure changes an existing one. Both
	// return the settings the host accepted but cannot honour or report,
	// keyed like protocol.ServiceFacts.Sources, with the reason.
	Install(name string, cfg InstallConfig) (gaps map[string]string, err error)
	Reconfigure(name string, cfg InstallConfig) (gaps map[string]string, err error)
	Remove(name string) error
	SetRecovery(name string, r protocol.Recovery) (gaps map[string]string, err error)
	// Start and Stop wait up to timeout for the service to reach the state.
	Start(name string, timeout time.Duration) error
	Stop(name string, timeout time.Duration) error
	// ActiveDependents lists the services that depend on name, directly
	// or through others, and are not stopped, in the order they must be
	// stopped: each before the services it depends on. Windows refuses to
	// stop a service while such services run
	// (ERROR_DEPENDENT_SERVICES_RUNNING); starting them again goes in
	// reverse.
	ActiveDependents(name string) ([]string, error)
	// ParamChange sends SERVICE_CONTROL_PARAMCHANGE, for on_change = "reload".
	ParamChange(name string) error
}

// InstallConfig is a service's SCM configuration as the agent writes it.
type InstallConfig struct {
	BinaryPath  string
	Args        []string
	DisplayName string
	Description string
	Start       string // protocol.Start*
	Account     protocol.Account
	DependsOn   []string
	// Env goes to the service's Environment registry value (native mode);
	// wrapped services get theirs from the wrapper instead.
	Env map[string]string
}

// Observed is a service as the host reports it.
type Observed struct {
	Installed  bool
	Config     protocol.SCMConfig
	Status     protocol.ServiceStatus
	Recovery   *protocol.Recovery
	Env        map[string]string
	Unreadable map[string]string
	// Sources maps a setting to where it was read from when that is not
	// the SCM's own API (e.g. "registry").
	Sources map[string]string
	// MarkedForDelete is a service deleted while a program still holds
	// it open: it stays, refusing every change and start
	// (ERROR_SERVICE_MARKED_FOR_DELETE), until the last handle closes.
	MarkedForDelete bool
}

// Service states as reported in facts.
const (
	StateStopped       = "stopped"
	StateStartPending  = "start_pending"
	StateStopPending   = "stop_pending"
	StateRunning       = "running"
	StateContinuing    = "continue_pending"
	StatePausePending  = "pause_pending"
	StatePaused        = "paused"
	StateNotInstalled  = "not_installed"
	defaultStartWait   = 30 * time.Second
	defaultStopTimeout = 30 * time.Second
)
