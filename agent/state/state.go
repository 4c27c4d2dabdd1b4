package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// SchemaVersion is bumped when state.json changes incompatibly.
const SchemaVersion = 1

// DefaultKeepReleases is how many releases per service stay on disk for
// rollback, the current one included.
const DefaultKeepReleases = 5

// State is the content of state.json.
type State struct {
	Schema       int                 `json:"schema"`
	KeepReleases int                 `json:"keep_releases"`
	Services     map[string]*Service `json:"services"`
	// Resources are the managed resources of other kinds than services
	// (scheduled tasks, firewall rules, event log sources), by kind and
	// name.
	Resources map[string]map[string]*Resource `json:"resources,omitempty"`
	// StoppedDependents maps a service the agent stopped to the services
	// that depended on it and were running, which Windows made it stop
	// first, in the order they were stopped. They are started again, in
	// reverse, when the service next starts (or its release switch
	// finishes); keeping the list here lets an agent killed in between
	// hand that duty to the next one.
	StoppedDependents map[string][]string `json:"stopped_dependents,omitempty"`
	// LogonRights are the accounts of managed services that need "Log on
	// as a service", by lower-case account name.
	LogonRights map[string]*LogonRight `json:"logon_rights,omitempty"`
	// Deleting are services the agent deleted that Windows still keeps,
	// marked for deletion, because programs hold them open.
	Deleting map[string]bool `json:"deleting,omitempty"`
}

// LogonRight is an account's "Log on as a service" right as the agent
// found it or gave it.
type LogonRight struct {
	Account string `json:"account"`
	SID     string `json:"sid,omitempty"`
	// Added says the agent gave the right, so it takes it away again when
	// no managed service runs as the account any more. A right the account
	// held before is never taken away.
	Added bool `json:"added"`
	// Gap says why the host could not show the right (Wine keeps no
	// account rights).
	Gap string `json:"gap,omitempty"`
}

// Service is what the agent remembers about one managed service.
type Service struct {
	// Spec is the last applied desired state, always redacted.
	Spec protocol.ServiceSpec `json:"spec"`
	History
	// Files maps managed file names to the SHA-256 last written.
	Files map[string]string `json:"files,omitempty"`
	// Recorded holds settings that were written to a host that cannot
	// report them back (Wine), keyed like ServiceFacts.Sources.
	Recorded *Recorded `json:"recorded,omitempty"`
	// Password is the salted hash of the account password last handed to
	// the service manager (never the password), so a plan can tell when
	// the configured one differs. Nil when none was handed for the
	// current account.
	Password *protocol.PasswordHash `json:"password,omitempty"`
}

// Recorded are settings the agent wrote but may not be able to read back.
type Recorded struct {
	Recovery     *protocol.Recovery `json:"recovery,omitempty"`
	DelayedStart *bool              `json:"delayed_start,omitempty"`
	// EnvSHA256 is the environment written, as names and value hashes.
	EnvSHA256 map[string]string `json:"env_sha256,omitempty"`
	// LegacyEnv is the environment with its values, as older agents
	// recorded it; Load converts it to EnvSHA256 and the next Save drops it.
	LegacyEnv map[string]string `json:"env,omitempty"`
}

// History is the releases a resource keeps, newest first: Releases[0]
// is current.
type History struct {
	Releases []protocol.Release `json:"releases"`
}

// Resource is what the agent remembers about one managed resource of a
// kind other than service.
type Resource struct {
	// Spec is the kind's spec of the current release, redacted.
	Spec json.RawMessage `json:"spec,omitempty"`
	History
	// Recorded is what the kind's handler noted when it last activated a
	// release: what the host reported back, or settings it could only
	// record (see protocol.ResourceFacts.Sources).
	Recorded json.RawMessage `json:"recorded,omitempty"`
	// Secrets are salted hashes of the current release's secret values
	// (never the values), for plan to compare with.
	Secrets map[string]protocol.PasswordHash `json:"secrets,omitempty"`
}

// Resource returns the resource of kind and name, or nil.
func (st *State) Resource(kind, name string) *Resource {
	return st.Resources[kind][name]
}

// ResourceEntry returns the resource of kind and name, adding an empty
// one if there is none.
func (st *State) ResourceEntry(kind, name string) *Resource {
	if st.Resources == nil {
		st.Resources = map[string]map[string]*Resource{}
	}
	if st.Resources[kind] == nil {
		st.Resources[kind] = map[string]*Resource{}
	}
	r := st.Resources[kind][name]
	if r == nil {
		r = &Resource{}
		st.Resources[kind][name] = r
	}
	return r
}

// DropResource forgets a resource.
func (st *State) DropResource(kind, name string) {
	delete(st.Resources[kind], name)
	if len(st.Resources[kind]) == 0 {
		delete(st.Resources, kind)
	}
}

// ResourceNames lists the managed resources of kind, sorted.
func (st *State) ResourceNames(kind string) []string {
	names := make([]string, 0, len(st.Resources[kind]))
	for n := range st.Resources[kind] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// histories is every kept release history, of services and other kinds.
func (st *State) histories() []*History {
	var out []*History
	for _, s := range st.Services {
		out = append(out, &s.History)
	}
	for _, byName := range st.Resources {
		for _, r := range byName {
			out = append(out, &r.History)
		}
	}
	return out
}

// Current is the active release, or nil.
func (s *History) Current() *protocol.Release {
	if len(s.Releases) == 0 {
		return nil
	}
	return &s.Releases[0]
}

// Previous is the release a rollback returns to, or nil.
func (s *History) Previous() *protocol.Release {
	if len(s.Releases) < 2 {
		return nil
	}
	return &s.Releases[1]
}

// Activate makes rel current, moving it to the front if it was kept
// already, and trims history to keep entries. It returns releases that fell
// off, whose artifacts may now be unreferenced.
func (s *History) Activate(rel protocol.Release, keep int) (dropped []protocol.Release) {
	if keep < 1 {
		keep = 1
	}
	out := []protocol.Release{rel}
	for _, r := range s.Releases {
		if !sameRelease(r, rel) {
			out = append(out, r)
		}
	}
	if len(out) > keep {
		dropped = append(dropped, out[keep:]...)
		out = out[:keep]
	}
	s.Releases = out
	return dropped
}

// sameRelease: releases with ids are one when their ids are; older
// entries without one are told apart by artifact.
func sameRelease(a, b protocol.Release) bool {
	if a.ID != "" || b.ID != "" {
		return a.ID == b.ID
	}
	return a.Artifact == b.Artifact
}

// Find returns the kept release with the given id, or nil.
func (s *History) Find(id string) *protocol.Release {
	for i := range s.Releases {
		if s.Releases[i].ID == id {
			return &s.Releases[i]
		}
	}
	return nil
}

// ReferencedReleases is every release id some resource keeps.
func (st *State) ReferencedReleases() map[string]bool {
	refs := map[string]bool{}
	for _, s := range st.histories() {
		for _, r := range s.Releases {
			if r.ID != "" {
				refs[r.ID] = true
			}
		}
	}
	return refs
}

// New returns an empty state.
func New() *State {
	return &State{Schema: SchemaVersion, KeepReleases: DefaultKeepReleases, Services: map[string]*Service{}}
}

// Load reads state.json, or returns an empty state if there is none yet.
func Load(l Layout) (*State, error) {
	b, err := atomicfile.ReadFile(l.StateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, err
	}
	st := New()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w", l.StateFile(), err)
	}
	if st.Schema > SchemaVersion {
		return nil, fmt.Errorf("%s: schema %d is newer than this agent understands (%d); upgrade the agent", l.StateFile(), st.Schema, SchemaVersion)
	}
	if st.Services == nil {
		st.Services = map[string]*Service{}
	}
	// Files written by older agents held environment values; keep only
	// their hashes from here on.
	for _, s := range st.Services {
		if s == nil {
			continue
		}
		s.Spec = s.Spec.Redacted()
		if r := s.Recorded; r != nil && r.LegacyEnv != nil {
			r.EnvSHA256, r.LegacyEnv = protocol.HashEnv(r.LegacyEnv), nil
		}
	}
	// state.json is indented; specs read back as compact as they were
	// written.
	for _, byName := range st.Resources {
		for _, r := range byName {
			r.Spec, r.Recorded = compact(r.Spec), compact(r.Recorded)
		}
	}
	if st.KeepReleases < 1 {
		st.KeepReleases = DefaultKeepReleases
	}
	return st, nil
}

func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// Save writes state.json atomically. Specs are redacted again here, so a
// password or environment value can never reach the file even if a caller
// forgot.
func (st *State) Save(l Layout) error {
	for _, s := range st.Services {
		s.Spec = s.Spec.Redacted()
		if r := s.Recorded; r != nil && r.LegacyEnv != nil {
			r.EnvSHA256, r.LegacyEnv = protocol.HashEnv(r.LegacyEnv), nil
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.StateFile(), append(b, '\n'))
}

// ServiceNames returns managed service names, sorted.
func (st *State) ServiceNames() []string {
	names := make([]string, 0, len(st.Services))
	for n := range st.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ReferencedArtifacts is every artifact some kept release still uses.
func (st *State) ReferencedArtifacts() map[string]bool {
	refs := map[string]bool{}
	for _, s := range st.histories() {
		for _, r := range s.Releases {
			if r.Artifact != "" {
				refs[r.Artifact] = true
			}
		}
	}
	return refs
}

// dependentsKey folds case: Windows service names are case-insensitive.
func dependentsKey(service string) string { return strings.ToLower(service) }

// StoppedDependentsOf lists the dependents recorded as stopped with
// service, in the order they were stopped.
func (st *State) StoppedDependentsOf(service string) []string {
	return st.StoppedDependents[dependentsKey(service)]
}

// RecordStoppedDependents adds names to the dependents recorded for
// service, keeping earlier ones: a replayed stop finds them stopped
// already, and must not forget that they ran. It reports whether the
// record changed.
func (st *State) RecordStoppedDependents(service string, names []string) bool {
	key := dependentsKey(service)
	have := st.StoppedDependents[key]
	changed := false
	for _, n := range names {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, n) }) {
			have = append(have, n)
			changed = true
		}
	}
	if changed {
		if st.StoppedDependents == nil {
			st.StoppedDependents = map[string][]string{}
		}
		st.StoppedDependents[key] = have
	}
	return changed
}

// ClearStoppedDependents forgets the dependents recorded for service and
// reports whether there were any.
func (st *State) ClearStoppedDependents(service string) bool {
	key := dependentsKey(service)
	if _, ok := st.StoppedDependents[key]; !ok {
		return false
	}
	delete(st.StoppedDependents, key)
	return true
}
