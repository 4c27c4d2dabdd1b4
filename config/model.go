package config

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Config is a loaded, validated configuration: the desired state. Slices
// are sorted by name so everything derived from them is stable.
type Config struct {
	Variables []*Variable
	Hosts     []*Host
	Builds    []*Build
	Services  []*Service
	Tasks     []*Task
	// Environment is the environment this run selected ("" when the
	// hosts declare none); Environments are all the hosts declare,
	// sorted. Hosts and services of other environments are left out.
	Environment  string
	Environments []string
	// Files holds the source of every parsed file, for rendering
	// diagnostics with their source lines.
	Files map[string]*hcl.File

	hostIndex    map[string]*Host
	buildIndex   map[string]*Build
	serviceIndex map[string]*Service
}

// Host returns the host with the given name, or nil.
func (c *Config) Host(name string) *Host {
	if c.hostIndex == nil {
		c.hostIndex = index(c.Hosts, func(h *Host) string { return h.Name })
	}
	return c.hostIndex[name]
}

// Build returns the build with the given name, or nil.
func (c *Config) Build(name string) *Build {
	if c.buildIndex == nil {
		c.buildIndex = index(c.Builds, func(b *Build) string { return b.Name })
	}
	return c.buildIndex[name]
}

// Service returns the service with the given name, or nil.
func (c *Config) Service(name string) *Service {
	if c.serviceIndex == nil {
		c.serviceIndex = index(c.Services, func(s *Service) string { return s.Name })
	}
	return c.serviceIndex[name]
}

// WithServices returns a copy of the configuration with only the given
// services, for planning part of it (gsd destroy). Lookups on the copy see
// its own services.
func (c *Config) WithServices(services []*Service) *Config {
	return &Config{Variables: c.Variables, Hosts: c.Hosts, Builds: c.Builds, Services: services, Tasks: c.Tasks, Files: c.Files,
		Environment: c.Environment, Environments: c.Environments}
}

// Without returns a copy of the configuration without the resources of
// the given names, of every kind, or without any resource when names is
// nil: the desired state that removes them (gsd destroy).
func (c *Config) Without(names []string) *Config {
	drop := map[string]bool{}
	for _, n := range names {
		drop[strings.ToLower(n)] = true
	}
	var services []*Service
	for _, s := range c.Services {
		if names != nil && !drop[strings.ToLower(s.Name)] {
			services = append(services, s)
		}
	}
	out := c.WithServices(services)
	out.Tasks = nil
	for _, t := range c.Tasks {
		if names != nil && !drop[strings.ToLower(t.Name)] {
			out.Tasks = append(out.Tasks, t)
		}
	}
	return out
}

// HostsOf are the hosts of the service or task of that name; ok is
// false when there is none.
func (c *Config) HostsOf(name string) (hosts []string, ok bool) {
	if s := c.Service(name); s != nil {
		return s.Hosts, true
	}
	if t := c.Task(name); t != nil {
		return t.Hosts, true
	}
	return nil, false
}

// BinaryUse is a binary and the resource that runs it.
type BinaryUse struct {
	Binary  Binary
	Address string // kind.NAME
}

// Binaries lists the binaries the configuration's resources run, each
// with the first resource that runs it, so that they can be built or
// found before planning.
func (c *Config) Binaries() []BinaryUse {
	var out []BinaryUse
	seen := map[Binary]bool{}
	for _, s := range c.Services {
		if !seen[s.Binary] {
			seen[s.Binary] = true
			out = append(out, BinaryUse{Binary: s.Binary, Address: "service." + s.Name})
		}
	}
	for _, t := range c.Tasks {
		if !seen[t.Binary] {
			seen[t.Binary] = true
			out = append(out, BinaryUse{Binary: t.Binary, Address: "task." + t.Name})
		}
	}
	return out
}

// index maps names to items. The Config is not changed after Load, so the
// lazily built indexes never go stale.
func index[T any](items []T, name func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		m[name(it)] = it
	}
	return m
}

// Text is a string from the configuration that remembers whether it came
// from a sensitive value. Its String and JSON forms hide a sensitive value,
// so it cannot leak by being printed or saved by accident; code that must
// send the value to a host reads Value explicitly.
type Text struct {
	Value     string
	Sensitive bool
}

const sensitivePlaceholder = "(sensitive)"

func (t Text) String() string {
	if t.Sensitive {
		return sensitivePlaceholder
	}
	return t.Value
}

// MarshalJSON never writes a sensitive value.
func (t Text) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.String())
}

// Variable is a declared input variable and the value it resolved to.
type Variable struct {
	Name        string
	Description string
	Sensitive   bool
	// Source says where the value came from: "default", "env", a var
	// file's name, or "-var".
	Source    string
	DeclRange hcl.Range
}

// Host is one Windows machine gsd manages.
type Host struct {
	Name    string
	Address string
	Labels  map[string]string
	// Environment is the environment the host belongs to ("" for
	// every environment).
	Environment string
	// vars is the host's vars map as services see it in each.host.vars,
	// sensitive values marked.
	vars cty.Value
	// A host may describe both ways in; TransportName says which one gsd
	// uses ("winrm" or "ssh"), and that one's settings are never nil.
	TransportName string
	WinRM         *WinRM
	SSH           *SSH
	// DeclRange is the host block's header, for diagnostics that name it.
	DeclRange hcl.Range
}

// Transport names the protocol used to reach the host: the one chosen, or
// for a host with a single block (as one made in code may be) that one.
func (h *Host) Transport() string {
	switch {
	case h.TransportName != "":
		return h.TransportName
	case h.SSH != nil && h.WinRM == nil:
		return "ssh"
	}
	return "winrm"
}

// WinRM settings of a host. Plain HTTP with NTLM is the default, every
// message encrypted with the session key (what a stock Windows Server
// takes); HTTPS is asked for, and unencrypted messages need
// AllowUnencrypted.
type WinRM struct {
	HTTPS            bool
	Port             int
	Auth             string // "basic", "ntlm", "kerberos" or "negotiate"
	User             string // optional with Kerberos: the ticket cache's principal is used
	Password         Text
	CACert           string // absolute path, or empty for the system pool
	Insecure         bool
	AllowUnencrypted bool
	Timeout          time.Duration
	// Kerberos (auth = "kerberos" or "negotiate"), each empty otherwise.
	SPN      string // the host's service principal, "HTTP/<address>" by default
	Realm    string // for a User without one; empty: the address's domain or krb5.conf's default
	KRB5Conf string // absolute path; empty: KRB5_CONFIG, else /etc/krb5.conf
	Keytab   string // absolute path of a keytab holding User's keys
	CCache   string // ticket cache path; empty: KRB5CCNAME, else the system default
}

// UsesKerberos reports whether the host is reached with Kerberos, alone
// or first.
func (w *WinRM) UsesKerberos() bool {
	return w.Auth == AuthKerberos || w.Auth == AuthNegotiate
}

// SSH settings of a host.
type SSH struct {
	User       string
	Port       int
	PrivateKey string // absolute path, or empty to use ssh-agent
	Password   Text
	HostKey    string // pinned key in authorized_keys form, or empty
	KnownHosts string // path; empty means ~/.ssh/known_hosts
	Timeout    time.Duration
}

// Build is a Go package to cross-compile for the hosts.
type Build struct {
	Name    string
	Package string
	Dir     string // absolute
	GOOS    string
	GOARCH  string
	LDFlags string
	Tags    []string
	CGO     bool
	Env     map[string]string

	DeclRange hcl.Range
}

// Service start types.
const (
	StartAuto     = "auto"
	StartDelayed  = "delayed"
	StartManual   = "manual"
	StartDisabled = "disabled"
)

// Service modes.
const (
	ModeNative  = "native"
	ModeWrapped = "wrapped"
)

// Service is a Windows service gsd installs on its hosts.
type Service struct {
	Name        string
	Hosts       []string // resolved host names, sorted
	Binary      Binary
	Version     string // empty: the planner uses the artifact's short hash
	Mode        string
	DisplayName string
	Description string
	Args        []Text
	Start       string
	Account     Account
	DependsOn   []Dependency
	Env         map[string]Text
	Files       []*File
	Recovery    *Recovery // nil: no failure actions (any on the host are cleared)
	Health      *Health   // nil: healthy means running
	Log         *Log      // only for wrapped services
	Firewall    *Firewall // nil: no firewall rule
	// WorkDir is a wrapped program's working directory; empty: a folder
	// of its own under C:\ProgramData\gsd\services\<name>.
	WorkDir     string
	StopTimeout time.Duration
	Rollout     Rollout
	Adopt       bool

	// Block is the name of the service block; Key is the for_each key
	// this service is the instance of, and Name is Block-Key then.
	Block string
	Key   string
	// PerHost is the service as evaluated for each of its hosts, when
	// its attributes use each.host; nil when they are the same on every
	// host. Name, Hosts, Binary, DependsOn and Rollout are the same in
	// all of them.
	PerHost map[string]*Service

	DeclRange hcl.Range
}

// On is the service as it is deployed on host: its per-host values when
// it has any, else the service itself.
func (s *Service) On(host string) *Service {
	if h := s.PerHost[host]; h != nil {
		return h
	}
	return s
}

// Binary is where a service's executable comes from: a build block or a
// prebuilt file.
type Binary struct {
	Build string // name of a build block
	Path  string // absolute path of a prebuilt .exe
}

// Account is the identity the service runs as.
type Account struct {
	Name     string // NT SERVICE\<service>, its virtual account, when not set
	Password Text   // only for domain or local user accounts
}

// Dependency is one entry of depends_on: another gsd service, or a Windows
// service gsd does not manage (such as Tcpip).
type Dependency struct {
	Service string // a gsd service name
	Name    string // an unmanaged Windows service name
}

// Key is the Windows service name the dependency stands for.
func (d Dependency) Key() string {
	if d.Service != "" {
		return d.Service
	}
	return d.Name
}

// File on-change actions.
const (
	OnChangeRestart = "restart"
	OnChangeReload  = "reload"
	OnChangeNone    = "none"
)

// File is a managed configuration file of a service.
type File struct {
	Name     string
	Path     string // absolute Windows path on the host
	Content  Text
	OnChange string
}

// Recovery holds the SCM failure actions.
type Recovery struct {
	Actions    []RecoveryAction
	ResetAfter time.Duration
	OnNonCrash bool
	Command    string // for "run" actions
}

// RecoveryAction is one SCM failure action such as "restart/5s".
type RecoveryAction struct {
	Type  string // "none", "restart", "reboot" or "run"
	Delay time.Duration
}

// Health is how gsd decides a service is healthy after a change. The
// agent checks it on the host itself.
type Health struct {
	HTTP         string
	TCP          string
	Running      bool
	BodyMatch    string
	Timeout      time.Duration
	Interval     time.Duration
	HealthyAfter time.Duration
}

// Log is log handling for wrapped services.
type Log struct {
	Dir     string // empty: the agent's default for the service
	MaxSize int64  // bytes
	Keep    int
}

// Rollout is the rolling-upgrade policy.
type Rollout struct {
	MaxParallel   int // hosts per batch; 0 when MaxPercent is used
	MaxPercent    int // percent of the service's hosts per batch
	Canary        int
	CanaryPause   bool
	Pause         time.Duration
	MaxFailures   int
	AutoRollback  bool
	RollbackScope string // "batch" or "all"
}
