package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Version is the protocol version this package speaks. A client that needs a
// newer one sees it in the hello and must refuse to continue.
const Version = 2

// Ops the agent understands. Mutating ops take the host lock implicitly.
const (
	OpHello          = "hello"
	OpFacts          = "facts"
	OpLock           = "lock"
	OpUnlock         = "unlock"
	OpStage          = "stage"
	OpWriteFile      = "write_file"
	OpDeleteFile     = "delete_file"
	OpEnsureService  = "ensure_service"
	OpDeleteService  = "delete_service"
	OpSetRecovery    = "set_recovery"
	OpSwitchRelease  = "switch_release"
	OpRollback       = "rollback"
	OpStart          = "start"
	OpStop           = "stop"
	OpReload         = "reload"
	OpApply          = "apply"
	OpRecoverJournal = "recover_journal"
	OpBreakLock      = "break_lock"
)

// Event kinds.
const (
	EventHello    = "hello"
	EventProgress = "progress"
	EventResult   = "result"
	EventError    = "error"
)

// Error codes carried by error events. Clients branch on these, never on
// message text.
const (
	CodeBadRequest   = "bad_request"
	CodeLineTooLong  = "line_too_long"
	CodeUnknownOp    = "unknown_op"
	CodeInvalidName  = "invalid_name"
	CodeLocked       = "locked"
	CodeHashMismatch = "hash_mismatch"
	CodeSizeMismatch = "size_mismatch"
	CodeStreamBroken = "stream_broken"
	CodeNotFound     = "not_found"
	// CodeUnmanaged: a service of that name exists and gsd did not create
	// it; it is only taken over when the spec says Adopt.
	CodeUnmanaged   = "unmanaged"
	CodeUnsupported = "unsupported"
	CodeVersion     = "version_mismatch"
	CodeFailed      = "failed"
	// CodeJournalPending refuses an apply while an earlier one is
	// unfinished; recover_journal must succeed first.
	CodeJournalPending = "journal_pending"
)

// Request is one line from the client. Args is decoded per op.
type Request struct {
	ID   string          `json:"id"`
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Event is one line from the agent.
type Event struct {
	ID      string          `json:"id,omitempty"`
	Kind    string          `json:"event"`
	Op      string          `json:"op,omitempty"`
	Message string          `json:"message,omitempty"`
	Hello   *Hello          `json:"hello,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
}

// Hello is the agent's first line.
type Hello struct {
	AgentVersion    string   `json:"agent_version"`
	ProtocolVersion int      `json:"protocol_version"`
	MaxLineBytes    int      `json:"max_line_bytes"`
	OS              string   `json:"os"`
	Ops             []string `json:"ops"`
}

// Error describes why a request failed. Holder is set for CodeLocked so the
// user learns who is applying.
type Error struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Holder  *LockHolder `json:"holder,omitempty"`
}

// HelloArgs is the client's optional hello; the agent refuses a client that
// needs a newer protocol than it speaks.
type HelloArgs struct {
	ProtocolVersion int    `json:"protocol_version"`
	Client          string `json:"client,omitempty"`
}

// LockHolder names who holds a host: the operator (from the client) and the
// agent process that took the lock on their behalf.
type LockHolder struct {
	User     string    `json:"user"`
	Operator string    `json:"operator,omitempty"`
	Machine  string    `json:"machine"`
	PID      int       `json:"pid"`
	Since    time.Time `json:"since"`
	// Token is random per acquisition; a lock is only released by the
	// agent whose token it carries.
	Token string `json:"token,omitempty"`
}

// BreakLockArgs names the holder an operator has verified to be gone (its
// pid and since, as reported in facts or a locked error). The lock is
// removed only if it still names exactly that holder.
type BreakLockArgs struct {
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// LockArgs names the operator on whose behalf the agent locks the host.
type LockArgs struct {
	Operator string `json:"operator"`
}

// StageArgs announces an artifact of Size bytes. Frames follow the request
// line (see FrameReader) carrying its bytes in the named Encoding.
type StageArgs struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Name is the file name the artifact gets inside its content-addressed
	// directory, e.g. "api.exe".
	Name     string `json:"name"`
	Encoding string `json:"encoding,omitempty"`
}

// StageResult says where the artifact now lives.
type StageResult struct {
	Path           string `json:"path"`
	SHA256         string `json:"sha256"`
	Size           int64  `json:"size"`
	AlreadyPresent bool   `json:"already_present"`
}

// WriteFileArgs writes a managed file of a service, relative to the
// service's directory.
type WriteFileArgs struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// DeleteFileArgs removes a managed file.
type DeleteFileArgs struct {
	Service string `json:"service"`
	Name    string `json:"name"`
}

// FileResult reports a managed file after a write.
type FileResult struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Changed bool   `json:"changed"`
}

// Start types.
const (
	StartAuto     = "auto"
	StartDelayed  = "delayed"
	StartManual   = "manual"
	StartDisabled = "disabled"
)

// Modes.
const (
	ModeNative  = "native"
	ModeWrapped = "wrapped"
)

// Account is the identity a service runs as. Password is only ever read by
// the agent to hand to the service manager; it is stripped before anything
// is stored or echoed.
type Account struct {
	Name     string `json:"name,omitempty"`
	Password string `json:"password,omitempty"`
}

// RecoveryAction is one SCM failure action.
type RecoveryAction struct {
	Type    string `json:"type"` // restart | reboot | run | none
	DelayMS int64  `json:"delay_ms"`
}

// Recovery is the SCM's failure policy for a service.
type Recovery struct {
	Actions      []RecoveryAction `json:"actions"`
	ResetAfterMS int64            `json:"reset_after_ms"`
	OnNonCrash   bool             `json:"on_non_crash"`
}

// WrapperSpec tunes the service-host wrapper of a wrapped service.
type WrapperSpec struct {
	LogMaxBytes      int64 `json:"log_max_bytes,omitempty"`
	LogKeep          int   `json:"log_keep,omitempty"`
	BackoffInitialMS int64 `json:"backoff_initial_ms,omitempty"`
	BackoffMaxMS     int64 `json:"backoff_max_ms,omitempty"`
}

// ServiceSpec is the desired state of one service, as sent by gsd.
type ServiceSpec struct {
	Name        string   `json:"name"`
	Mode        string   `json:"mode"`
	DisplayName string   `json:"display_name,omitempty"`
	Description string   `json:"description,omitempty"`
	Artifact    string   `json:"artifact"` // SHA-256 of a staged artifact
	Version     string   `json:"version,omitempty"`
	Args        []string `json:"args,omitempty"`
	Start       string   `json:"start,omitempty"`
	Account     Account  `json:"account,omitempty"`
	DependsOn   []string `json:"depends_on,omitempty"`
	// Env holds the environment's values, which may be secrets. They travel
	// only in requests: the agent hands them to the wrapper's own config
	// (wrapped) or the service's registry key (native) and never stores or
	// reports them.
	Env map[string]string `json:"env,omitempty"`
	// EnvSHA256 maps each of Env's names to the SHA-256 (hex) of its value:
	// the form in which the environment is stored, journaled and reported
	// (last_applied). A request that carries EnvSHA256 but no Env, as a
	// journaled step replayed after a crash does, leaves the service's
	// environment as it is on the host.
	EnvSHA256   map[string]string `json:"env_sha256,omitempty"`
	Recovery    *Recovery         `json:"recovery,omitempty"`
	StopTimeout int64             `json:"stop_timeout_ms,omitempty"`
	Wrapper     *WrapperSpec      `json:"wrapper,omitempty"`
	// Adopt takes over a same-named service that gsd did not create.
	// Without it such a service is never touched.
	Adopt bool `json:"adopt,omitempty"`
}

// Redacted returns the spec without secrets, the only form that is stored
// or reported: no password, and the environment as names and value hashes.
func (s ServiceSpec) Redacted() ServiceSpec {
	s.Account.Password = ""
	if s.Env != nil {
		s.EnvSHA256 = HashEnv(s.Env)
		s.Env = nil
	}
	return s
}

// KeepsEnv reports whether the spec asks to leave the environment as it is:
// it names the environment only by hashes (a redacted, journaled step).
func (s ServiceSpec) KeepsEnv() bool {
	return s.Env == nil && s.EnvSHA256 != nil
}

// HashEnv maps each name in env to the SHA-256 (hex) of its value, or
// returns nil for an empty environment.
func HashEnv(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		sum := sha256.Sum256([]byte(v))
		out[k] = hex.EncodeToString(sum[:])
	}
	return out
}

// ServiceRef names the service an op acts on.
type ServiceRef struct {
	Service   string `json:"service"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	// Purge (delete_service only) also removes releases and managed files.
	Purge bool `json:"purge,omitempty"`
}

// SwitchArgs points a service at an already staged artifact.
type SwitchArgs struct {
	Service  string `json:"service"`
	Artifact string `json:"artifact"`
	Version  string `json:"version,omitempty"`
}

// RecoveryArgs sets a service's failure policy.
type RecoveryArgs struct {
	Service  string   `json:"service"`
	Recovery Recovery `json:"recovery"`
}

// Interrupt policies for a journaled apply.
const (
	OnInterruptComplete = "complete"
	OnInterruptRollback = "rollback"
)

// ApplyArgs runs Steps in order under the journal. When a step fails, or
// when the agent dies and OnInterrupt is "rollback", Rollback runs instead of
// the remaining steps. Steps and Rollback are ordinary requests (no stage:
// artifacts are staged before the apply).
type ApplyArgs struct {
	Steps       []Request `json:"steps"`
	Rollback    []Request `json:"rollback,omitempty"`
	OnInterrupt string    `json:"on_interrupt,omitempty"`
}

// ApplyResult reports what a journaled apply did.
type ApplyResult struct {
	Completed  int  `json:"completed"`
	RolledBack bool `json:"rolled_back"`
}

// StepProgress is the progress payload of apply steps.
type StepProgress struct {
	Step  int    `json:"step"`
	Op    string `json:"op"`
	Phase string `json:"phase"` // started | done | failed | rollback
}
