package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/winsec"
)

// Handler is a kind of resource other than services (a scheduled task, a
// firewall rule, an event log source) as the agent applies it. The agent
// does the rest the same for every kind: it stores releases, journals
// each activation, keeps the history in state.json, returns to the
// release before when one fails, and prunes. A kind lives in its own
// package (agent/task, ...) and registers its handler with RegisterKind.
type Handler interface {
	// Check validates a release's whole spec (its secrets filled in)
	// before anything is stored, and returns the release to store: the
	// spec without secrets, file contents by hash, the secrets.
	Check(name string, spec json.RawMessage, secrets map[string]string) (releases.Record, error)
	// Apply makes the host hold release rec of the resource, whole,
	// creating it or changing it. With effect protocol.EffectStop it is
	// left disabled (the return of a new resource that failed, which has
	// no release before). prev is what the agent keeps of the resource,
	// nil for a new one. Apply returns what the agent keeps for Observe
	// and Remove, and the settings the host accepted but cannot report,
	// each with why.
	Apply(name string, rec releases.Record, effect string, prev *state.Resource, emit func(string)) (recorded json.RawMessage, gaps map[string]string, err error)
	// Remove deletes the resource from the host; r is what the agent
	// keeps of it.
	Remove(name string, r *state.Resource, emit func(string)) error
	// Observe reports the resource as the host has it now: Installed,
	// Drift, Sources, Unreadable and Status. The agent fills in the rest.
	Observe(name string, r *state.Resource) protocol.ResourceFacts
}

// Host is what a kind's handler may use of the agent.
type Host struct {
	Layout state.Layout
	// Artifact is the path of a staged artifact, by SHA-256.
	Artifact func(sha string) (string, error)
	// Self is the agent's own executable, which hosts the programs of
	// scheduled tasks as it hosts wrapped services.
	Self string
	// HostPath maps an absolute Windows path to this host's file system
	// (itself on Windows).
	HostPath func(string) string
	// Grant lets account use dir (created if need be) and what is in it
	// with access, besides what the root's access list gives SYSTEM and
	// Administrators alone; gap is what this host could not put in place.
	Grant func(dir, account string, access winsec.Access) (gap string, err error)
	// CheckAccount refuses a group managed service account this host
	// cannot use, naming owner ("task report"); other accounts pass.
	CheckAccount func(owner, account string) error
}

var (
	registryMu sync.Mutex
	registry   = map[string]func(Host) Handler{}
)

// RegisterKind makes agents apply resources of kind with the handler
// newHandler returns. Kinds register from their package's init; the
// agent's command imports them.
func RegisterKind(kind string, newHandler func(Host) Handler) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[kind]; dup || kind == protocol.KindService {
		panic("agent: kind registered twice: " + kind)
	}
	registry[kind] = newHandler
}

// Errorf is an error the client receives with a protocol error code
// (protocol.Code*), for handlers to refuse with.
func Errorf(code, format string, args ...any) error { return failf(code, format, args...) }

// handlers builds the handlers of every kind: opts.Kinds where given,
// the registered ones otherwise.
func (a *Agent) newHandlers() map[string]Handler {
	host := Host{
		Layout:       a.layout,
		Artifact:     a.store.Find,
		Self:         a.opts.ServiceHost,
		HostPath:     a.hostPath,
		Grant:        a.grantFolder,
		CheckAccount: a.checkManagedAccount,
	}
	out := map[string]Handler{}
	registryMu.Lock()
	for k, f := range registry {
		out[k] = f(host)
	}
	registryMu.Unlock()
	maps.Copy(out, a.opts.Kinds)
	return out
}

// handlerKind runs a registered kind through the agent's release ops.
type handlerKind struct {
	kind string
	h    Handler
}

func (k handlerKind) check(_ *Agent, name string, spec json.RawMessage, secrets map[string]string) (releases.Record, error) {
	rec, err := k.h.Check(name, spec, secrets)
	rec.Kind, rec.Name = k.kind, name
	return rec, err
}

func (k handlerKind) current(_ *Agent, st *state.State, name string) (string, bool, error) {
	if r := st.Resource(k.kind, name); r != nil && r.Current() != nil {
		return r.Current().ID, false, nil
	}
	return "", false, nil
}

func (k handlerKind) landed(*Agent, *state.Journal) bool { return false }

// neverCreated is false: a handler's Apply with EffectStop leaves a new
// resource that failed disabled, whatever it got to.
func (k handlerKind) neverCreated(*Agent, string) bool { return false }

// forgetFailedFirst drops the record a failed first activation left: a
// disabled task or rule recorded as the release the plan wants would
// never be planned again. A rule or task gsd made carries gsd's mark, so
// the next apply takes it up again.
func (k handlerKind) forgetFailedFirst(a *Agent, name string) (bool, error) {
	st, err := a.loadState()
	if err != nil {
		return false, err
	}
	if st.Resource(k.kind, name) == nil {
		return true, nil
	}
	st.DropResource(k.kind, name)
	return true, st.Save(a.layout)
}

func (k handlerKind) switchTo(a *Agent, j *state.Journal, id string, rec releases.Record, effect string, emit progressFunc) (*protocol.ActivateResult, error) {
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	prev := st.Resource(k.kind, j.Name)
	say := func(msg string) { emit(msg, nil) }
	recorded, gaps, err := k.h.Apply(j.Name, rec, effect, prev, say)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", k.kind, j.Name, err)
	}
	r := st.ResourceEntry(k.kind, j.Name)
	res := &protocol.ActivateResult{To: id, Recorded: gaps}
	if cur := r.Current(); cur != nil {
		res.From = cur.ID
	}
	if cur := r.Current(); cur == nil || cur.ID != id {
		var ref struct {
			Artifact string `json:"artifact"`
			Version  string `json:"version"`
		}
		json.Unmarshal(rec.Spec, &ref)
		rel := protocol.Release{ID: id, Artifact: ref.Artifact, Version: ref.Version, Activated: time.Now().UTC(), By: j.By}
		if ref.Artifact != "" {
			rel.Path, _ = a.store.Find(ref.Artifact)
		}
		if cur != nil {
			rel.Changes = specFieldChanges(r.Spec, rec.Spec)
		}
		if kept := r.Find(id); kept != nil && len(rel.Changes) == 0 {
			rel.Changes = kept.Changes
		}
		dropped := r.Activate(rel, st.KeepReleases)
		res.Changed = true
		defer a.prune(dropped, emit)
	}
	r.Spec, r.Recorded = rec.Spec, recorded
	if r.Secrets, err = hashSecrets(r.Secrets, rec.Secrets); err != nil {
		return nil, err
	}
	if err := st.Save(a.layout); err != nil {
		return nil, err
	}
	for _, setting := range slices.Sorted(maps.Keys(gaps)) {
		emit(fmt.Sprintf("%s %s: %s written; %s, kept in agent state", k.kind, j.Name, setting, gaps[setting]), nil)
	}
	return res, nil
}

func (k handlerKind) remove(a *Agent, name string, _ int64, emit progressFunc) (bool, error) {
	st, err := a.loadState()
	if err != nil {
		return false, err
	}
	r := st.Resource(k.kind, name)
	if r == nil {
		// Not gsd's: never touched.
		return false, nil
	}
	if err := k.h.Remove(name, r, func(msg string) { emit(msg, nil) }); err != nil {
		return false, fmt.Errorf("%s %s: %w", k.kind, name, err)
	}
	st.DropResource(k.kind, name)
	if err := st.Save(a.layout); err != nil {
		return false, err
	}
	a.prune(r.Releases, emit)
	return true, nil
}

// facts reports every managed resource of the kind.
func (k handlerKind) facts(st *state.State) []protocol.ResourceFacts {
	var out []protocol.ResourceFacts
	for _, name := range st.ResourceNames(k.kind) {
		r := st.Resource(k.kind, name)
		f := k.h.Observe(name, r)
		f.Kind, f.Name, f.LastApplied = k.kind, name, r.Spec
		f.Current, f.Previous, f.Releases = r.Current(), r.Previous(), r.Releases
		f.Secrets = r.Secrets
		out = append(out, f)
	}
	return out
}

// specFieldChanges names the top-level fields in which two specs of a
// kind differ, for a release's list of changes.
func specFieldChanges(old, new json.RawMessage) []string {
	var a, b map[string]any
	json.Unmarshal(old, &a)
	json.Unmarshal(new, &b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// hashSecrets are salted hashes of a release's secret values, keeping a
// value's old hash (and salt) while the value stays the same.
func hashSecrets(old map[string]protocol.PasswordHash, secrets map[string]string) (map[string]protocol.PasswordHash, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	out := make(map[string]protocol.PasswordHash, len(secrets))
	for k, v := range secrets {
		if h, ok := old[k]; ok && h.Matches(v) {
			out[k] = h
			continue
		}
		h, err := protocol.NewPasswordHash(v)
		if err != nil {
			return nil, fmt.Errorf("hashing secret %s: %w", k, err)
		}
		out[k] = h
	}
	return out, nil
}
