package protocol

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"time"
)

// KindService is the first kind of resource: a Windows service and its
// files. Release ops name the kind, so that other kinds (a scheduled task,
// a firewall rule) travel through the same ops and the same journal.
const KindService = "service"

// Secret keys: the values of a release that never appear in a plan, a
// journal, state or facts. They travel in StageReleaseArgs.Secrets, and the
// agent keeps them only sealed for the machine.
const (
	SecretPassword = "account.password"
	SecretArgs     = "args" // the arguments as a JSON list, when any is sensitive
	secretEnv      = "env."
	secretFile     = "file."
)

// SecretEnv is the key of one environment variable's value.
func SecretEnv(name string) string { return secretEnv + name }

// SecretFile is the key of a sensitive file's content.
func SecretFile(name string) string { return secretFile + name }

// SecretKeys lists the secrets a spec needs filled in, sorted: what
// WithoutSecrets took out of it.
func (s ServiceSpec) SecretKeys() []string {
	keys := s.Process().SecretKeys()
	for _, f := range s.Files {
		if f.Sensitive {
			keys = append(keys, SecretFile(f.Name))
		}
	}
	sort.Strings(keys)
	return keys
}

// Secrets returns the secret values of a whole spec by key.
func (s ServiceSpec) Secrets() map[string]string {
	out := s.Process().Secrets()
	for _, f := range s.Files {
		if f.Sensitive {
			out[SecretFile(f.Name)] = string(f.Content)
		}
	}
	return out
}

// WithoutSecrets returns the spec with every secret value taken out: no
// password, the environment as hashes, sensitive arguments as a hash, and
// no content for sensitive files. Non-sensitive file contents stay.
func (s ServiceSpec) WithoutSecrets() ServiceSpec {
	s.setProcess(s.Process().WithoutSecrets())
	if s.Files != nil {
		files := make([]FileSpec, len(s.Files))
		for i, f := range s.Files {
			if f.Sensitive {
				f.Content = nil
			}
			files[i] = f
		}
		s.Files = files
	}
	return s
}

// Blind returns the spec without secrets and without the hashes of
// secret values: the environment by names only, no hash of sensitive
// arguments or files. It is the form plan files hold, where a hash would
// let a guess at a secret be checked; WithSecrets fills the hashes in
// again from the values.
func (s ServiceSpec) Blind() ServiceSpec {
	s = s.WithoutSecrets()
	s.setProcess(s.Process().Blind())
	for i, f := range s.Files {
		if f.Sensitive {
			s.Files[i].SHA256 = ""
		}
	}
	return s
}

// WithSecrets fills a spec's secrets back in and checks each against the
// hash the spec carries, so a value that is not the one planned is
// refused. Every key the spec needs must be given, and no other.
func (s ServiceSpec) WithSecrets(secrets map[string]string) (ServiceSpec, error) {
	if err := checkSecretKeys(s.SecretKeys(), secrets); err != nil {
		return s, err
	}
	p, err := s.Process().fill(secrets)
	if err != nil {
		return s, err
	}
	s.setProcess(p)
	if s.Files != nil {
		files := make([]FileSpec, len(s.Files))
		for i, f := range s.Files {
			if f.Sensitive {
				f.Content = []byte(secrets[SecretFile(f.Name)])
				if f.SHA256 == "" {
					f.SHA256 = SHA256Hex(f.Content)
				}
			}
			files[i] = f
		}
		s.Files = files
	}
	return s, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// StageReleaseArgs stores a release on the host. Spec is the kind's spec
// without secrets (a ServiceSpec for KindService); Secrets holds the
// values it needs filled in (see SecretKeys). Nothing that runs is
// touched.
type StageReleaseArgs struct {
	Kind    string            `json:"kind"`
	Name    string            `json:"name"`
	Spec    json.RawMessage   `json:"spec"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

// StageReleaseResult names the staged release. The id is content-addressed:
// staging the same release again yields the same id.
type StageReleaseResult struct {
	ID             string `json:"id"`
	AlreadyPresent bool   `json:"already_present"`
}

// Effects: what an activation does to the running process.
const (
	// EffectRestart stops the service (with its running dependents)
	// before the switch and starts it after.
	EffectRestart = "restart"
	// EffectReload switches in place and sends SERVICE_CONTROL_PARAMCHANGE.
	EffectReload = "reload"
	// EffectStart switches in place and starts a stopped service.
	EffectStart = "start"
	// EffectNone switches settings the service manager applies at once.
	EffectNone = "none"
	// EffectStop switches and leaves the service stopped (the rollback of
	// a new service, which has no earlier release).
	EffectStop = "stop"
)

// Failure policies of an activation.
const (
	// OnFailureRollback returns to the release that was active before,
	// whole, when the activation fails or its agent dies mid-way.
	OnFailureRollback = "rollback"
	// OnFailureComplete finishes the activation when its agent died
	// mid-way; a failure still returns to the release before.
	OnFailureComplete = "complete"
)

// ActivateArgs switches a resource to a staged release, in one journaled
// step: stop (per Effect), switch binary, settings and files, start. The
// agent never leaves the resource half switched: a failure, or an agent
// that dies, ends on the new release or on the one before, whole.
type ActivateArgs struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Release string `json:"release"`
	Effect  string `json:"effect"`
	// OnInterrupt says what the next agent does with this activation if
	// this one dies mid-way (OnFailureRollback or OnFailureComplete).
	OnInterrupt string `json:"on_interrupt,omitempty"`
	// TimeoutMS bounds the stop and the start.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// ActivateResult says what an activation did.
type ActivateResult struct {
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	Changed bool   `json:"changed"`
	Running bool   `json:"running"`
	// Recorded maps settings the host accepted but cannot report to why.
	Recorded map[string]string `json:"recorded_only,omitempty"`
}

// Release is one release of a service as the host keeps it: its id, the
// artifact it runs, when it was activated, by whom, and which attributes
// differ from the release that was active before.
type Release struct {
	ID        string    `json:"id,omitempty"`
	Artifact  string    `json:"artifact"`
	Version   string    `json:"version,omitempty"`
	Path      string    `json:"path"`
	Activated time.Time `json:"activated"`
	By        string    `json:"by,omitempty"`
	Changes   []string  `json:"changes,omitempty"`
}

// SpecChanges names the attributes in which two redacted specs differ, in
// the configuration's words ("binary", "env.PORT", "file.app.yaml").
func SpecChanges(old, new ServiceSpec) []string {
	var out []string
	add := func(attr string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, attr)
		}
	}
	add("binary", old.Artifact, new.Artifact)
	add("version", old.Version, new.Version)
	add("mode", old.Mode, new.Mode)
	add("display_name", old.DisplayName, new.DisplayName)
	add("description", old.Description, new.Description)
	add("args", argsKey(old), argsKey(new))
	add("start", old.Start, new.Start)
	add("account", strings.ToLower(old.Account.Name), strings.ToLower(new.Account.Name))
	add("depends_on", old.DependsOn, new.DependsOn)
	for _, k := range unionKeys(old.EnvSHA256, new.EnvSHA256) {
		add("env."+k, old.EnvSHA256[k], new.EnvSHA256[k])
	}
	add("recovery", old.Recovery, new.Recovery)
	add("stop_timeout", old.StopTimeout, new.StopTimeout)
	add("log", old.Wrapper, new.Wrapper)
	oldFiles, newFiles := filesByName(old.Files), filesByName(new.Files)
	for _, k := range unionKeys(oldFiles, newFiles) {
		add("file."+k, oldFiles[k], newFiles[k])
	}
	add("adopt", old.Adopt, new.Adopt)
	return out
}

func argsKey(s ServiceSpec) any {
	if s.SensitiveArgs {
		return s.ArgsSHA256
	}
	return s.Args
}

func filesByName(fs []FileSpec) map[string]string {
	m := map[string]string{}
	for _, f := range fs {
		m[f.Name] = f.SHA256 + "\x00" + f.Path + "\x00" + f.OnChange
	}
	return m
}

func unionKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
