package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

// Kind is what plan knows of one kind of resource: which releases of it
// the configuration asks for, how one host's resources differ from them,
// and how its steps roll out. Make, the plan file, apply and the views
// know kinds only through it and the steps it makes. Services are built
// in; another kind lives in its own package (plan/task, ...) and
// registers itself with Register.
type Kind interface {
	// Name is the kind's name, as steps, facts and the agent carry it
	// (protocol.Kind*).
	Name() string
	// Desired returns the releases the configuration asks for, by a key
	// unique within the kind (a resource's name, or NAME@HOST where its
	// values differ per host). artifact finds a binary's artifact.
	Desired(cfg *config.Config, artifact func(config.Binary) *build.Artifact) (map[string]Desired, error)
	// PlanHost appends the kind's steps on one host to w.Host.Steps, in
	// the order they are carried out, and asks for the uploads they need.
	PlanHost(w *HostWork)
	// Rollouts returns how the kind's steps in p are rolled out, in the
	// order apply goes through them.
	Rollouts(p *Plan, cfg *config.Config) []*Rollout
	// Secrets are the secret values of the release of resource name on
	// host, resolved from the configuration, by key: what apply fills
	// into the step's release. ok is false when the configuration does
	// not have the resource on that host.
	Secrets(cfg *config.Config, name, host string) (secrets map[string]string, ok bool)
}

// Desired is one release the configuration asks for.
type Desired struct {
	// Hosts are the hosts it goes to.
	Hosts []string
	// Blind is the release as a plan file holds it: no secret value and
	// no hash of one.
	Blind any
	// Secrets are its secret values by key.
	Secrets map[string]string
	// Spec is the kind's whole spec, for its own PlanHost.
	Spec any
	// Version is the release's label and Artifact the SHA-256 of the
	// binary it runs, if any, as plans show them.
	Version, Artifact string
}

// Ranks order the kinds: on each host, and among rollouts, a kind of
// lower rank goes first. What a service needs in place before it starts
// (its event source, its firewall rule) ranks before services.
const (
	RankBeforeServices = 10
	RankServices       = 20
	RankAfterServices  = 30
)

type rankedKind struct {
	kind Kind
	rank int
}

var (
	kindsMu sync.Mutex
	kinds   []rankedKind
)

// Register makes Make plan resources of kind k, ranked by rank (see
// RankServices). Kinds register from their package's init.
func Register(k Kind, rank int) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	for _, rk := range kinds {
		if rk.kind.Name() == k.Name() {
			panic("plan: kind registered twice: " + k.Name())
		}
	}
	kinds = append(kinds, rankedKind{k, rank})
	sort.SliceStable(kinds, func(i, j int) bool { return kinds[i].rank < kinds[j].rank })
}

func init() { Register(serviceKind{}, RankServices) }

// Kinds are the registered kinds, in rank order.
func Kinds() []Kind {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	out := make([]Kind, len(kinds))
	for i, rk := range kinds {
		out[i] = rk.kind
	}
	return out
}

// KindOf is the registered kind of that name, or nil.
func KindOf(name string) Kind {
	for _, k := range Kinds() {
		if k.Name() == name {
			return k
		}
	}
	return nil
}

// HostWork is one host being planned: what a kind's PlanHost reads and
// where it puts its steps.
type HostWork struct {
	Host   *HostPlan
	Config *config.Config
	Facts  *protocol.Facts
	// Desired are the kind's releases, as its Desired returned them.
	Desired map[string]Desired

	plan      *Plan
	artifacts map[string]*build.Artifact
	held      map[string]bool
	uploads   map[string]*Upload
}

// Upload records that the step of resource name needs the artifact of
// binary on the host: the plan names its file, and it is uploaded before
// anything changes unless the host holds it already.
func (w *HostWork) Upload(binary config.Binary, name string) {
	art := w.artifacts[ArtifactKey(binary)]
	if art == nil {
		return
	}
	w.plan.Artifacts[art.SHA256] = ArtifactFile{Path: art.Path, Size: art.Size}
	if w.held[art.SHA256] {
		return
	}
	u := w.uploads[art.SHA256]
	if u == nil {
		u = &Upload{SHA256: art.SHA256, Size: art.Size, Name: artifactName(art, binary, name)}
		w.uploads[art.SHA256] = u
	}
	u.For = append(u.For, name)
}

// Artifact is the artifact of binary, or nil.
func (w *HostWork) Artifact(binary config.Binary) *build.Artifact {
	return w.artifacts[ArtifactKey(binary)]
}

// BlindJSON is a spec's plan-file form, for Step.Spec.
func BlindJSON(blind any) json.RawMessage {
	b, err := json.Marshal(blind)
	if err != nil {
		panic(fmt.Sprintf("plan: a spec does not marshal: %v", err))
	}
	return b
}

// SecretKeys are the sorted keys of secrets, for Step.Secrets.
func SecretKeys(secrets map[string]string) []string {
	if len(secrets) == 0 {
		return nil
	}
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SecretsFor resolves the secret values a step's release needs from the
// configuration, checking that each key the plan names has one.
func SecretsFor(cfg *config.Config, s *Step, host string) (map[string]string, error) {
	k := KindOf(s.Kind)
	if k == nil {
		return nil, fmt.Errorf("%s: this gsd knows no resource kind %q", s.Address, s.Kind)
	}
	all, ok := k.Secrets(cfg, s.Service, host)
	if !ok {
		return nil, fmt.Errorf("the configuration no longer has %s, whose secrets the plan needs", s.Address)
	}
	out := make(map[string]string, len(s.Secrets))
	for _, key := range s.Secrets {
		v, ok := all[key]
		if !ok {
			return nil, fmt.Errorf("%s: the configuration has no value for %s; run gsd plan again", s.Address, key)
		}
		out[key] = v
	}
	return out, nil
}
