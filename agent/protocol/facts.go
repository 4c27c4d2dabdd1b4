package protocol

import "time"

// Where a reported setting came from. Wine cannot report some SCM settings;
// the agent then reports what it last wrote, and says so.
const (
	SourceSCM        = "scm"
	SourceAgentState = "agent-state"
	// SourceWrapper marks a wrapped service's environment, which the
	// service host injects rather than the SCM.
	SourceWrapper = "wrapper"
	// SourceRegistry marks a setting read from the service's registry key
	// because the SCM's API did not report it.
	SourceRegistry = "registry"
)

// Facts is everything gsd needs to plan one host, gathered in one round trip.
type Facts struct {
	Host     HostFacts      `json:"host"`
	Services []ServiceFacts `json:"services"`
	// Resources are the managed resources of other kinds, sorted by kind
	// and name.
	Resources []ResourceFacts `json:"resources,omitempty"`
	Artifacts []string        `json:"artifacts"` // SHA-256 of every staged artifact
	Lock      *LockHolder     `json:"lock,omitempty"`
	// LockError is set instead of Lock when lock.json exists but cannot be
	// read; such a lock is treated as abandoned once it is
	// state.CorruptLockGrace old.
	LockError string `json:"lock_error,omitempty"`
	// Journal is set when an interrupted apply awaits recovery.
	Journal *JournalSummary `json:"journal,omitempty"`
	// Accounts answers FactsArgs.Accounts.
	Accounts []AccountFacts `json:"accounts,omitempty"`
}

// FactsArgs are the optional arguments of the facts op.
type FactsArgs struct {
	// Accounts are group managed service accounts that services are to
	// run as on this host: the agent checks the host can use each.
	Accounts []string `json:"accounts,omitempty"`
}

// AccountFacts is what a host says about an account a service is to run
// as.
type AccountFacts struct {
	Name string `json:"name"`
	// Problem says why the host cannot run a service as the account, and
	// how to fix that; empty when it can.
	Problem string `json:"problem,omitempty"`
	// Unchecked says why the host could not tell (a Windows or a Wine
	// without NetQueryServiceAccount).
	Unchecked string `json:"unchecked,omitempty"`
}

// HostFacts describes the machine and the agent on it.
type HostFacts struct {
	Machine      string `json:"machine"`
	OS           string `json:"os"`
	AgentVersion string `json:"agent_version"`
	Root         string `json:"root"`
	KeepReleases int    `json:"keep_releases"`
	// Gaps maps a host-wide protection the agent could not put in place
	// ("root_acl": the protected DACL on its root) to why, e.g. a Wine
	// host without working ACLs. Empty means all are in place.
	Gaps map[string]string `json:"gaps,omitempty"`
	// Repairs say what gsd found wrong with its own files on the host and
	// put right while reading it: a root folder someone else owned, an
	// agent binary with other bytes than its name promises.
	Repairs []string `json:"repairs,omitempty"`
}

// JournalSummary describes an activation that a dead agent left
// unfinished; the next one to take the lock finishes or reverts it.
type JournalSummary struct {
	ID          string    `json:"id"`
	Started     time.Time `json:"started"`
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	From        string    `json:"from,omitempty"`
	To          string    `json:"to"`
	OnInterrupt string    `json:"on_interrupt"`
}

// SCMConfig is a service's configuration as the service manager reports it.
type SCMConfig struct {
	BinaryPath   string   `json:"binary_path"`
	Args         []string `json:"args"`
	StartType    string   `json:"start_type"`
	DelayedStart bool     `json:"delayed_start"`
	Account      string   `json:"account"`
	Dependencies []string `json:"dependencies"`
	DisplayName  string   `json:"display_name"`
	Description  string   `json:"description"`
}

// ServiceStatus is the running state of a service.
type ServiceStatus struct {
	State    string `json:"state"` // stopped | start_pending | running | stop_pending | ...
	PID      uint32 `json:"pid,omitempty"`
	ExitCode uint32 `json:"exit_code,omitempty"`
}

// FileFacts is a managed file as found on disk.
type FileFacts struct {
	Name   string `json:"name"`
	Path   string `json:"path,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Missing is true when the file is recorded as managed but absent.
	Missing bool `json:"missing,omitempty"`
}

// ServiceFacts is the actual state of one managed service.
type ServiceFacts struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	// Installed is false when the agent manages the service but the SCM no
	// longer knows it (someone deleted it by hand).
	Installed bool           `json:"installed"`
	Config    *SCMConfig     `json:"config,omitempty"`
	Status    *ServiceStatus `json:"status,omitempty"`
	Recovery  *Recovery      `json:"recovery,omitempty"`
	// Sources maps a setting ("recovery", "delayed_start", "env") to where
	// its reported value came from when that is not the SCM.
	Sources map[string]string `json:"sources,omitempty"`
	// Unreadable maps a setting to why the host could not report it.
	Unreadable map[string]string `json:"unreadable,omitempty"`
	// EnvSHA256 is the service's environment as names and SHA-256 of each
	// value (values may be secrets and are never reported); Sources["env"]
	// says where it was read.
	EnvSHA256 map[string]string `json:"env_sha256,omitempty"`
	// Env is never set: environment values are not reported.
	//
	// Deprecated: use EnvSHA256. Kept so older clients still compile.
	Env          map[string]string `json:"env,omitempty"`
	BinarySHA256 string            `json:"binary_sha256,omitempty"`
	Files        []FileFacts       `json:"files,omitempty"`
	Current      *Release          `json:"current,omitempty"`
	Previous     *Release          `json:"previous,omitempty"`
	Releases     []Release         `json:"releases,omitempty"`
	LastApplied  *ServiceSpec      `json:"last_applied,omitempty"`
	// Password is the salted hash of the account password the agent last
	// handed to the service manager, nil if it never handed one for the
	// current account. LastApplied never holds the password itself.
	Password *PasswordHash  `json:"password,omitempty"`
	Wrapper  *WrapperStatus `json:"wrapper,omitempty"`
	// LogonRight is, for a user or managed account, whether its "Log on
	// as a service" right was granted by gsd (LogonRightGranted; gsd takes
	// it away with the last service that runs as the account) or held
	// before (LogonRightHeld; never taken away).
	LogonRight string `json:"logon_right,omitempty"`
}

// Values of ServiceFacts.LogonRight.
const (
	LogonRightGranted = "granted by gsd"
	LogonRightHeld    = "held before gsd"
)

// WrapperStatus is what the service-host wrapper last recorded about its
// child, so exit codes and restarts survive the wrapper itself.
type WrapperStatus struct {
	ChildPID     int       `json:"child_pid,omitempty"`
	Starts       int       `json:"starts"`
	LastExitCode *int      `json:"last_exit_code,omitempty"`
	LastExit     time.Time `json:"last_exit,omitempty"`
	NextBackoff  int64     `json:"next_backoff_ms,omitempty"`
	// LastStop says how the program was last stopped: "graceful",
	// "killed after stop timeout", or "killed: <why Ctrl-Break failed>".
	LastStop string    `json:"last_stop,omitempty"`
	Updated  time.Time `json:"updated"`
}
