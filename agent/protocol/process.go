package protocol

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Process is what a program gsd runs sees of its release besides its
// kind's own settings: its binary, arguments, account and environment.
// Services and scheduled tasks share it, and with it the rules for its
// secrets: the account password, sensitive arguments and every
// environment value travel and are kept only as secrets.
type Process struct {
	Artifact string   `json:"artifact"` // SHA-256 of a staged artifact
	Version  string   `json:"version,omitempty"`
	Args     []string `json:"args,omitempty"`
	// SensitiveArgs: an argument came from a sensitive value, so the
	// arguments travel and are kept as a secret; ArgsSHA256 stands for
	// them where they are left out.
	SensitiveArgs bool    `json:"sensitive_args,omitempty"`
	ArgsSHA256    string  `json:"args_sha256,omitempty"`
	Account       Account `json:"account,omitempty"`
	// Env holds the environment's values; EnvSHA256 (name -> SHA-256 of
	// the value) is the form in which it is stored, planned and reported.
	Env       map[string]string `json:"env,omitempty"`
	EnvSHA256 map[string]string `json:"env_sha256,omitempty"`
}

// SecretKeys lists the secrets the process part needs filled in, sorted.
func (p Process) SecretKeys() []string {
	var keys []string
	if p.Account.Password != "" || p.Account.PasswordSet {
		keys = append(keys, SecretPassword)
	}
	if p.SensitiveArgs {
		keys = append(keys, SecretArgs)
	}
	names := p.Env
	if names == nil {
		names = p.EnvSHA256
	}
	for k := range names {
		keys = append(keys, SecretEnv(k))
	}
	sort.Strings(keys)
	return keys
}

// Secrets returns the process part's secret values by key.
func (p Process) Secrets() map[string]string {
	out := map[string]string{}
	if p.Account.Password != "" {
		out[SecretPassword] = p.Account.Password
	}
	if p.SensitiveArgs {
		b, _ := json.Marshal(p.Args)
		out[SecretArgs] = string(b)
	}
	for k, v := range p.Env {
		out[SecretEnv(k)] = v
	}
	return out
}

// WithoutSecrets takes every secret value out: no password, the
// environment as hashes, sensitive arguments as a hash.
func (p Process) WithoutSecrets() Process {
	if p.Account.Password != "" {
		p.Account.PasswordSet = true
	}
	p.Account.Password = ""
	if p.Env != nil {
		p.EnvSHA256 = HashEnv(p.Env)
		p.Env = nil
	}
	if p.SensitiveArgs && p.Args != nil {
		b, _ := json.Marshal(p.Args)
		p.ArgsSHA256 = SHA256Hex(b)
		p.Args = nil
	}
	return p
}

// Blind takes the secrets out and the hashes of secret values too: the
// environment by names only, no hash of sensitive arguments.
func (p Process) Blind() Process {
	p = p.WithoutSecrets()
	if p.EnvSHA256 != nil {
		names := make(map[string]string, len(p.EnvSHA256))
		for k := range p.EnvSHA256 {
			names[k] = ""
		}
		p.EnvSHA256 = names
	}
	p.ArgsSHA256 = ""
	return p
}

// fill puts the process part's secrets back from secrets, checking each
// against the hash the spec carries. Which keys must be given is the
// caller's to check (see checkSecretKeys).
func (p Process) fill(secrets map[string]string) (Process, error) {
	if v, ok := secrets[SecretPassword]; ok {
		p.Account.Password, p.Account.PasswordSet = v, v != ""
	}
	if v, ok := secrets[SecretArgs]; ok {
		var args []string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			return p, fmt.Errorf("secret %s is not a list of strings: %v", SecretArgs, err)
		}
		if p.ArgsSHA256 != "" && SHA256Hex([]byte(v)) != p.ArgsSHA256 {
			return p, fmt.Errorf("secret %s differs from the one planned", SecretArgs)
		}
		p.Args, p.ArgsSHA256 = args, ""
	}
	names := p.EnvSHA256
	if p.Env != nil {
		names = p.Env
	}
	if len(names) > 0 {
		env := make(map[string]string, len(names))
		for k := range names {
			v := secrets[SecretEnv(k)]
			if h := p.EnvSHA256[k]; h != "" && h != SHA256Hex([]byte(v)) {
				return p, fmt.Errorf("secret %s differs from the one planned", SecretEnv(k))
			}
			env[k] = v
		}
		p.Env, p.EnvSHA256 = env, nil
	}
	return p, nil
}

// WithSecrets fills the process part's secrets back in: every key it
// needs must be given, and no other.
func (p Process) WithSecrets(secrets map[string]string) (Process, error) {
	if err := checkSecretKeys(p.SecretKeys(), secrets); err != nil {
		return p, err
	}
	return p.fill(secrets)
}

// checkSecretKeys: every key in want is given, and no other.
func checkSecretKeys(want []string, secrets map[string]string) error {
	for _, k := range want {
		if _, ok := secrets[k]; !ok {
			return fmt.Errorf("secret %s is missing", k)
		}
	}
	if len(secrets) != len(want) {
		for k := range secrets {
			if !contains(want, k) {
				return fmt.Errorf("secret %s is not part of this release", k)
			}
		}
	}
	return nil
}

// Process is the service's process part: binary, arguments, account and
// environment.
func (s ServiceSpec) Process() Process {
	return Process{Artifact: s.Artifact, Version: s.Version, Args: s.Args, SensitiveArgs: s.SensitiveArgs, ArgsSHA256: s.ArgsSHA256,
		Account: s.Account, Env: s.Env, EnvSHA256: s.EnvSHA256}
}

func (s *ServiceSpec) setProcess(p Process) {
	s.Artifact, s.Version, s.Args, s.SensitiveArgs, s.ArgsSHA256 = p.Artifact, p.Version, p.Args, p.SensitiveArgs, p.ArgsSHA256
	s.Account, s.Env, s.EnvSHA256 = p.Account, p.Env, p.EnvSHA256
}
