package plan

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

// FormatVersion is the version of the plan's JSON form and of saved plan
// files. A reader refuses a version it does not know.
const FormatVersion = 3

// Action is what a step does to one resource on one host.
type Action string

// Actions, in the order a summary lists them.
const (
	ActionNoOp    Action = "no-op"
	ActionCreate  Action = "create"
	ActionUpdate  Action = "update"  // settings change in place
	ActionReplace Action = "replace" // a new release of the binary
	ActionDelete  Action = "delete"
)

// Plan is everything gsd apply will do, host by host. It holds no secret:
// sensitive values appear as "(sensitive)" and are compared by hash.
type Plan struct {
	FormatVersion int `json:"format_version"`
	// Environment is the environment the plan was made for (-env), which
	// gsd apply FILE uses.
	Environment string      `json:"environment,omitempty"`
	Hosts       []*HostPlan `json:"hosts"`
	Rollouts    []*Rollout  `json:"rollouts,omitempty"`
	// Artifacts are the local files uploads read, by SHA-256: apply
	// streams them from there and never builds.
	Artifacts    map[string]ArtifactFile `json:"artifacts,omitempty"`
	Summary      Summary                 `json:"summary"`
	Fingerprints Fingerprints            `json:"fingerprints"`
	// Skipped are hosts left out because they could not be reached
	// (-skip-unreachable): nothing is planned or applied there.
	Skipped []SkippedHost `json:"skipped,omitempty"`
}

// SkippedHost is a host left out of a plan, and why.
type SkippedHost struct {
	Host  string `json:"host"`
	Error string `json:"error"`
}

// ArtifactFile is where an artifact was built or found.
type ArtifactFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// Summary counts steps across hosts, as "2 to add, 1 to change, 0 to
// destroy".
type Summary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
	// FailedHosts are hosts whose facts could not be read: nothing is
	// planned for them.
	FailedHosts int `json:"failed_hosts"`
}

// HasChanges reports whether applying the plan would change anything.
func (s Summary) HasChanges() bool { return s.Add+s.Change+s.Destroy > 0 }

// Fingerprints let gsd apply refuse a saved plan that no longer matches
// the configuration, the artifacts or a host. Config covers every desired
// value but secrets; Secrets covers those, through a slow salted hash, so
// the plan file lets no one check a guess at a secret.
type Fingerprints struct {
	Config    string            `json:"config"`
	Secrets   string            `json:"secrets,omitempty"`
	Artifacts map[string]string `json:"artifacts"`
	Facts     map[string]string `json:"facts"`
}

// HostPlan is the work on one host, in the order it is done.
type HostPlan struct {
	Host      string   `json:"host"`
	Address   string   `json:"address"`
	Transport string   `json:"transport"`
	Error     string   `json:"error,omitempty"`
	Uploads   []Upload `json:"uploads,omitempty"`
	Steps     []*Step  `json:"steps"`
	// Interrupted is an activation a dead agent left unfinished; gsd
	// apply finishes it (or returns to the release before) first.
	Interrupted *protocol.JournalSummary `json:"interrupted,omitempty"`
	// Repairs are what gsd found wrong with its own files on the host
	// and put right while reading it (see protocol.HostFacts.Repairs).
	Repairs []string `json:"repairs,omitempty"`
}

// Upload is an artifact the host does not hold yet. Uploads happen before
// anything stops, so a binary switch costs only a stop and a start.
type Upload struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Name   string `json:"name"`
	// For names the services that need it.
	For []string `json:"for"`
}

// Step is the change to one resource on one host. Apply carries it out
// from its typed fields alone: it stages Spec (with the Secrets filled in)
// as a release, then activates that release with Effect; rollback
// activates From. Changes are for people to read.
type Step struct {
	Address string `json:"address"` // kind.NAME
	Kind    string `json:"kind"`
	// Service is the resource's name (a service's, a task's...).
	Service string `json:"service"`
	Action  Action `json:"action"`
	// Spec is the release to stage, without secret values; nil for a
	// delete, or when Release names a release the host holds already.
	Spec json.RawMessage `json:"spec,omitempty"`
	// Secrets are the keys of the values apply fills into Spec.
	Secrets []string `json:"secrets,omitempty"`
	// Release is a release the host holds already (gsd rollback); empty
	// when Spec is to be staged.
	Release string `json:"release,omitempty"`
	// From is the release active now, which a rollback returns to.
	From string `json:"from,omitempty"`
	// Effect is what activation does to the running process (see
	// protocol.Effect*).
	Effect string `json:"effect,omitempty"`

	// Version is the release label after the step; OldVersion before it.
	Version    string   `json:"version,omitempty"`
	OldVersion string   `json:"old_version,omitempty"`
	Artifact   string   `json:"artifact,omitempty"`
	Changes    []Change `json:"changes"`
	// Restart says the service is restarted, and RestartReasons why. A
	// change the SCM applies at once (display name, start type) needs none.
	Restart        bool     `json:"restart"`
	RestartReasons []string `json:"restart_reasons,omitempty"`
	// Reload sends SERVICE_CONTROL_PARAMCHANGE instead of a restart, for
	// files with on_change = "reload".
	Reload bool `json:"reload,omitempty"`
	// Start says a stopped service that should run is started.
	Start bool `json:"start,omitempty"`
	// Problems are what the host says will make the step fail, with how
	// to fix it (a group managed service account it cannot use).
	Problems []string `json:"problems,omitempty"`
}

// Change is one attribute's difference. Old is nil for a new attribute,
// New nil for a removed one.
type Change struct {
	Attribute string  `json:"attribute"`
	Old       *string `json:"old"`
	New       *string `json:"new"`
	Sensitive bool    `json:"sensitive,omitempty"`
	// Restart says this change alone needs a restart to take effect.
	Restart bool `json:"restart,omitempty"`
	// Note qualifies the new value, such as the privilege of an account.
	Note string `json:"note,omitempty"`
}

// HostFacts is what was read from one host: its facts, or why they could
// not be read.
type HostFacts struct {
	Facts *protocol.Facts
	Err   error
}

// ArtifactKey is the key of a service's binary in Make's artifacts map:
// "build.NAME" for a build block, "file:PATH" for a prebuilt executable.
func ArtifactKey(b config.Binary) string {
	if b.Build != "" {
		return "build." + b.Build
	}
	return "file:" + b.Path
}

// Make compares the desired configuration with the facts of every host
// and returns the plan. It is pure: no I/O, no clock. Hosts missing from
// facts are not targeted and do not appear in the plan. Every kind of
// resource (see Kind) is planned on each host in rank order.
func Make(cfg *config.Config, artifacts map[string]*build.Artifact, facts map[string]HostFacts) (*Plan, error) {
	p := &Plan{FormatVersion: FormatVersion, Environment: cfg.Environment, Hosts: []*HostPlan{}, Artifacts: map[string]ArtifactFile{}}
	p.Fingerprints = Fingerprints{Artifacts: map[string]string{}, Facts: map[string]string{}}
	for k, a := range artifacts {
		p.Fingerprints.Artifacts[k] = a.SHA256
	}
	desired, err := desiredAll(cfg, func(b config.Binary) *build.Artifact { return artifacts[ArtifactKey(b)] })
	if err != nil {
		return nil, err
	}
	p.Fingerprints.Config = fingerprintDesired(desired)
	p.Fingerprints.Secrets = SecretsFingerprint(p.Fingerprints.Config, desired)

	for _, h := range cfg.Hosts {
		hf, targeted := facts[h.Name]
		if !targeted {
			continue
		}
		hp := &HostPlan{Host: h.Name, Address: h.Address, Transport: h.Transport(), Steps: []*Step{}}
		p.Hosts = append(p.Hosts, hp)
		if hf.Err != nil || hf.Facts == nil {
			hp.Error = "facts could not be read"
			if hf.Err != nil {
				hp.Error = hf.Err.Error()
			}
			p.Summary.FailedHosts++
			continue
		}
		p.Fingerprints.Facts[h.Name] = fingerprintFacts(hf.Facts)
		hp.Interrupted = hf.Facts.Journal
		hp.Repairs = hf.Facts.Host.Repairs
		planHost(p, hp, cfg, desired, artifacts, hf.Facts)
		count(&p.Summary, hp)
	}
	for _, k := range Kinds() {
		p.Rollouts = append(p.Rollouts, k.Rollouts(p, cfg)...)
	}
	return p, nil
}

// planHost has every kind plan its resources on one host, then lists
// the uploads they need.
func planHost(pl *Plan, hp *HostPlan, cfg *config.Config, desired map[string]map[string]Desired, artifacts map[string]*build.Artifact, f *protocol.Facts) {
	w := &HostWork{Host: hp, Config: cfg, Facts: f, plan: pl, artifacts: artifacts, held: map[string]bool{}, uploads: map[string]*Upload{}}
	for _, a := range f.Artifacts {
		w.held[a] = true
	}
	for _, k := range Kinds() {
		w.Desired = desired[k.Name()]
		k.PlanHost(w)
	}
	for _, u := range w.uploads {
		hp.Uploads = append(hp.Uploads, *u)
	}
	sort.Slice(hp.Uploads, func(i, j int) bool { return hp.Uploads[i].Name < hp.Uploads[j].Name })
}

// desiredAll is every kind's releases, by kind.
func desiredAll(cfg *config.Config, artifact func(config.Binary) *build.Artifact) (map[string]map[string]Desired, error) {
	out := map[string]map[string]Desired{}
	for _, k := range Kinds() {
		d, err := k.Desired(cfg, artifact)
		if err != nil {
			return nil, err
		}
		out[k.Name()] = d
	}
	return out, nil
}

// artifactName is the file name an artifact gets on a host: its build's
// name, or a prebuilt file's own name.
func artifactName(art *build.Artifact, b config.Binary, name string) string {
	switch {
	case art.Build != "":
		return art.Build + ".exe"
	case b.Path != "":
		return filepath.Base(b.Path)
	}
	return name + ".exe"
}

// Spec is a service's whole release as the agent receives it, secrets
// included (apply sends them apart; see ServiceSpec.WithoutSecrets). The
// release label defaults to the artifact's short hash.
func Spec(svc *config.Service, art *build.Artifact) protocol.ServiceSpec {
	s := protocol.ServiceSpec{
		Name:        svc.Name,
		Mode:        svc.Mode,
		DisplayName: svc.DisplayName,
		Description: svc.Description,
		Start:       svc.Start,
		StopTimeout: svc.StopTimeout.Milliseconds(),
		Adopt:       svc.Adopt,
	}
	p := ProcessOf(art, svc.Version, svc.Args, svc.Account, svc.Env)
	s.Artifact, s.Version, s.Args, s.SensitiveArgs, s.Account, s.Env = p.Artifact, p.Version, p.Args, p.SensitiveArgs, p.Account, p.Env
	for _, d := range svc.DependsOn {
		s.DependsOn = append(s.DependsOn, d.Key())
	}
	if r := svc.Recovery; r != nil {
		s.Recovery = &protocol.Recovery{ResetAfterMS: r.ResetAfter.Milliseconds(), OnNonCrash: r.OnNonCrash, Command: r.Command}
		for _, a := range r.Actions {
			s.Recovery.Actions = append(s.Recovery.Actions, protocol.RecoveryAction{Type: a.Type, DelayMS: a.Delay.Milliseconds()})
		}
	}
	if svc.Log != nil {
		s.Wrapper = &protocol.WrapperSpec{LogDir: svc.Log.Dir, LogMaxBytes: svc.Log.MaxSize, LogKeep: svc.Log.Keep, WorkDir: svc.WorkDir}
	}
	for _, f := range svc.Files {
		fs := protocol.FileSpec{Name: f.Name, OnChange: f.OnChange, Sensitive: f.Content.Sensitive, Content: []byte(f.Content.Value)}
		fs.SHA256 = protocol.SHA256Hex(fs.Content)
		if !strings.EqualFold(f.Path, config.DefaultFilePath(svc.Name, f.Name)) {
			fs.Path = f.Path
		}
		s.Files = append(s.Files, fs)
	}
	return s
}

// ProcessOf is the process part of a release of a service or task: its
// binary (the label defaulting to the artifact's short hash), arguments
// (a secret when any is sensitive), account and environment.
func ProcessOf(art *build.Artifact, version string, args []config.Text, account config.Account, env map[string]config.Text) protocol.Process {
	p := protocol.Process{
		Artifact: art.SHA256,
		Version:  version,
		Account:  protocol.Account{Name: account.Name, Password: account.Password.Value},
	}
	p.Account.PasswordSet = p.Account.Password != ""
	if p.Version == "" {
		p.Version = ShortHash(art.SHA256)
	}
	for _, a := range args {
		p.Args = append(p.Args, a.Value)
		p.SensitiveArgs = p.SensitiveArgs || a.Sensitive
	}
	if len(env) > 0 {
		p.Env = map[string]string{}
		for k, v := range env {
			p.Env[k] = v.Value
		}
	}
	return p
}

// effectOf is what activating a step's release does to the process.
func effectOf(s *Step) string {
	switch {
	case s.Action == ActionDelete:
		return protocol.EffectStop
	case s.Restart:
		return protocol.EffectRestart
	case s.Start:
		return protocol.EffectStart
	case s.Reload:
		return protocol.EffectReload
	}
	return protocol.EffectNone
}

// ShortHash is the first 12 hex digits of an artifact hash, the default
// release label.
func ShortHash(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// fingerprintDesired hashes the desired releases of every kind without
// their secrets (see SecretsFingerprint), with their hosts.
func fingerprintDesired(desired map[string]map[string]Desired) string {
	h := sha256.New()
	for _, kind := range sortedKeys(desired) {
		for _, key := range sortedKeys(desired[kind]) {
			d := desired[kind][key]
			b, _ := json.Marshal(d.Blind)
			fmt.Fprintf(h, "%s %s\n%s\nhosts %q\n", kind, key, b, d.Hosts)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SecretsFingerprint hashes every secret value of the desired releases
// with PBKDF2 (salted with the configuration's fingerprint), so that a
// saved plan can be checked against the secrets resolved at apply time
// while its file lets no one test a guess at a secret cheaply.
func SecretsFingerprint(salt string, desired map[string]map[string]Desired) string {
	var all []byte
	for _, kind := range sortedKeys(desired) {
		for _, key := range sortedKeys(desired[kind]) {
			b, _ := json.Marshal(desired[kind][key].Secrets) // sorted keys
			all = fmt.Appendf(all, "%s %s\n%s\n", kind, key, b)
		}
	}
	key, err := pbkdf2.Key(sha256.New, string(all), []byte("gsd-plan-secrets\n"+salt), 100000, 32)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(key)
}

// fingerprintFacts hashes the facts a plan depends on. What changes
// without anyone deploying (status, pid, the wrapper's counters, who holds
// the lock right now) is left out, so a saved plan is not refused merely
// because a service restarted.
func fingerprintFacts(f *protocol.Facts) string {
	c := *f
	c.Lock, c.LockError = nil, ""
	// What gsd put right while reading the host, and the accounts it was
	// asked to check, are not the host's state.
	c.Host.Repairs, c.Accounts = nil, nil
	c.Services = make([]protocol.ServiceFacts, len(f.Services))
	for i, s := range f.Services {
		// Whether a service runs stays in: it decides between a restart
		// and a start, so a plan made while it was stopped must not be
		// applied once it runs again.
		if s.Status != nil {
			s.Status = &protocol.ServiceStatus{State: s.Status.State}
		}
		s.Wrapper = nil
		c.Services[i] = s
	}
	c.Resources = make([]protocol.ResourceFacts, len(f.Resources))
	for i, r := range f.Resources {
		r.Status = nil
		c.Resources[i] = r
	}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
