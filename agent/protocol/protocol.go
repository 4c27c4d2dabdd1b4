package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Version is the protocol version this package speaks. A client that needs a
// newer one sees it in the hello and must refuse to continue.
const Version = 2

// Ops the agent understands. Mutating ops take the host lock implicitly.
const (
	OpHello  = "hello"
	OpFacts  = "facts"
	OpLock   = "lock"
	OpUnlock = "unlock"
	OpStage  = "stage"
	// OpStageRelease stores a whole release (StageReleaseArgs) on the
	// host without touching what runs; OpActivate switches a resource to
	// a staged release under the journal (ActivateArgs).
	OpStageRelease   = "stage_release"
	OpActivate       = "activate"
	OpDeleteService  = "delete_service"
	OpRecoverJournal = "recover_journal"
	OpBreakLock      = "break_lock"
	// OpHeartbeat is how a client says it is still there
	// (HeartbeatArgs). It carries no id and gets no answer; the first
	// one arms the agent's watchdog (see HeartbeatArgs).
	OpHeartbeat = "heartbeat"
)

// HeartbeatArgs announces how often the client sends heartbeats. An agent
// that has seen one and then hears nothing on its input for
// HeartbeatMisses intervals takes its controller for gone: it lets the
// operation in flight finish (an activation ends on one whole release),
// cancels waiting ones (a health check, an upload), releases the lock
// and exits.
type HeartbeatArgs struct {
	IntervalMS int64 `json:"interval_ms"`
}

// HeartbeatMisses is how many heartbeat intervals of silence an agent
// takes for a dead controller.
const HeartbeatMisses = 3

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
	// CodeJournalPending refuses an activation while an earlier one is
	// unfinished; recover_journal must succeed first.
	CodeJournalPending = "journal_pending"
	// CodeActivationFailed: an activation failed and the resource was
	// returned to the release it had before (ActivateResult in the error's
	// message names both).
	CodeActivationFailed = "activation_failed"
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
	// Alive says the holder proves it lives by touching the lock file
	// (every state.LockTouchEvery); Heard is when it last did. A holder
	// not heard from for state.LockStale is taken for dead even if its
	// pid exists.
	Alive bool      `json:"alive,omitempty"`
	Heard time.Time `json:"heard,omitzero"`
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
	// PasswordSet stands for the password where it is left out: the
	// release has one, kept as a secret.
	PasswordSet bool `json:"password_set,omitempty"`
}

// Account kinds: built-in accounts (LocalSystem, LocalService,
// NetworkService) and virtual accounts (NT SERVICE\<service>) need no
// password and no right; users need a password and, like group managed
// service accounts (DOMAIN\name$), the "Log on as a service" right.
const (
	AccountBuiltin = "builtin"
	AccountVirtual = "virtual"
	AccountManaged = "managed"
	AccountUser    = "user"
)

// AccountKind says which kind of account a service account name is.
func AccountKind(name string) string {
	switch strings.ToLower(name) {
	case "", "localsystem", `nt authority\system`, `.\localsystem`, "localservice", `nt authority\localservice`,
		"networkservice", `nt authority\networkservice`:
		return AccountBuiltin
	}
	domain, user, found := strings.Cut(name, `\`)
	if found && strings.EqualFold(domain, "NT SERVICE") {
		return AccountVirtual
	}
	if !found {
		user, _, _ = strings.Cut(name, "@")
	}
	if strings.HasSuffix(user, "$") {
		return AccountManaged
	}
	return AccountUser
}

// RecoveryAction is one SCM failure action.
type RecoveryAction struct {
	Type    string `json:"type"` // restart | reboot | run | none
	DelayMS int64  `json:"delay_ms"`
}

// Recovery is the SCM's failure policy for a service. Command is what a
// "run" action runs.
type Recovery struct {
	Actions      []RecoveryAction `json:"actions"`
	ResetAfterMS int64            `json:"reset_after_ms"`
	OnNonCrash   bool             `json:"on_non_crash"`
	Command      string           `json:"command,omitempty"`
	// RebootMessage is what Windows broadcasts before a reboot action
	// restarts the computer. The agent writes one naming the service
	// whenever an action reboots; it is not part of a release.
	RebootMessage string `json:"reboot_message,omitempty"`
}

// WrapperSpec tunes the service-host wrapper of a wrapped service. LogDir
// is an absolute Windows path; empty means the service's own log folder
// under the agent's root.
type WrapperSpec struct {
	LogDir string `json:"log_dir,omitempty"`
	// WorkDir is the program's working directory, an absolute Windows
	// path; empty means a folder of its own under the agent's root. The
	// service's account may modify it.
	WorkDir          string `json:"work_dir,omitempty"`
	LogMaxBytes      int64  `json:"log_max_bytes,omitempty"`
	LogKeep          int    `json:"log_keep,omitempty"`
	BackoffInitialMS int64  `json:"backoff_initial_ms,omitempty"`
	BackoffMaxMS     int64  `json:"backoff_max_ms,omitempty"`
}

// ServiceSpec is one release of a service: everything its process sees.
// gsd sends it without secret values (see Secrets) in stage_release; the
// agent stores it, immutable, under the release's id.
type ServiceSpec struct {
	Name        string   `json:"name"`
	Mode        string   `json:"mode"`
	DisplayName string   `json:"display_name,omitempty"`
	Description string   `json:"description,omitempty"`
	Artifact    string   `json:"artifact"` // SHA-256 of a staged artifact
	Version     string   `json:"version,omitempty"`
	Args        []string `json:"args,omitempty"`
	// SensitiveArgs: an argument came from a sensitive value, so the
	// arguments travel and are kept as a secret; ArgsSHA256 stands for
	// them where they are left out.
	SensitiveArgs bool     `json:"sensitive_args,omitempty"`
	ArgsSHA256    string   `json:"args_sha256,omitempty"`
	Start         string   `json:"start,omitempty"`
	Account       Account  `json:"account,omitempty"`
	DependsOn     []string `json:"depends_on,omitempty"`
	// Env holds the environment's values, which may be secrets. They
	// travel only as secrets in stage_release and are kept on the host
	// only sealed; EnvSHA256 (name -> SHA-256 of the value) is the form in
	// which the environment is stored, planned and reported.
	Env         map[string]string `json:"env,omitempty"`
	EnvSHA256   map[string]string `json:"env_sha256,omitempty"`
	Recovery    *Recovery         `json:"recovery,omitempty"`
	StopTimeout int64             `json:"stop_timeout_ms,omitempty"`
	Wrapper     *WrapperSpec      `json:"wrapper,omitempty"`
	Files       []FileSpec        `json:"files,omitempty"`
	// Adopt takes over a same-named service that gsd did not create.
	// Without it such a service is never touched.
	Adopt bool `json:"adopt,omitempty"`
}

// FileSpec is one managed file of a release. Path is where it is written:
// an absolute Windows path, or empty for the service's files folder.
// Content travels in stage_release only; a sensitive file's content
// travels as a secret, and the agent keeps it only sealed.
type FileSpec struct {
	Name      string `json:"name"`
	Path      string `json:"path,omitempty"`
	SHA256    string `json:"sha256"`
	OnChange  string `json:"on_change,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Content   []byte `json:"content,omitempty"`
}

// Redacted returns the spec without any secret and without file contents:
// the only form that is stored in state, journaled or reported.
func (s ServiceSpec) Redacted() ServiceSpec {
	s = s.WithoutSecrets()
	if s.Files != nil {
		files := make([]FileSpec, len(s.Files))
		for i, f := range s.Files {
			f.Content = nil
			files[i] = f
		}
		s.Files = files
	}
	return s
}

// HashEnv maps each name in env to the SHA-256 (hex) of its value, or
// returns nil for an empty environment.
func HashEnv(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = SHA256Hex([]byte(v))
	}
	return out
}

// SHA256Hex is the lowercase hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ServiceRef names the service an op acts on.
type ServiceRef struct {
	Service   string `json:"service"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	// Purge (delete_service only) also removes releases and managed files.
	Purge bool `json:"purge,omitempty"`
}
