package plan

import (
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
)

// noteKind is the smallest kind: a note named "memo" on every host,
// whose text is the host's address, with a secret, run by build.db.
type noteKind struct{ text string }

func (noteKind) Name() string { return "note" }

func (k noteKind) Desired(cfg *config.Config, _ func(config.Binary) *build.Artifact) (map[string]Desired, error) {
	out := map[string]Desired{}
	for _, h := range cfg.Hosts {
		out["memo@"+h.Name] = Desired{Hosts: []string{h.Name}, Blind: map[string]string{"text": k.text + h.Address}, Secrets: map[string]string{"pw": "s3cret"}}
	}
	return out, nil
}

func (noteKind) PlanHost(w *HostWork) {
	d := w.Desired["memo@"+w.Host.Host]
	step := &Step{Address: "note.memo", Kind: "note", Service: "memo", Action: ActionNoOp}
	if w.Facts.Resource("note", "memo") == nil {
		step.Action, step.Spec, step.Secrets, step.Effect = ActionCreate, BlindJSON(d.Blind), SecretKeys(d.Secrets), protocol.EffectNone
		w.Upload(config.Binary{Build: "db"}, "memo")
	}
	w.Host.Steps = append(w.Host.Steps, step)
}

func (noteKind) Rollouts(p *Plan, _ *config.Config) []*Rollout {
	for _, h := range p.Hosts {
		for _, s := range h.Steps {
			if s.Kind == "note" && s.Action != ActionNoOp {
				return []*Rollout{AllAtOnce(p, "note.memo")}
			}
		}
	}
	return nil
}

func (noteKind) Secrets(cfg *config.Config, name, host string) (map[string]string, bool) {
	return map[string]string{"pw": "s3cret"}, name == "memo" && cfg.Host(host) != nil
}

// withKind registers k for the rest of the test.
func withKind(t *testing.T, k Kind, rank int) {
	t.Helper()
	kindsMu.Lock()
	saved := append([]rankedKind(nil), kinds...)
	kindsMu.Unlock()
	Register(k, rank)
	t.Cleanup(func() {
		kindsMu.Lock()
		kinds = saved
		kindsMu.Unlock()
	})
}

// TestKindPlannedThroughTheInterface: a kind Make knows only through
// Kind gets its steps on each host in rank order, its uploads, its
// rollout, its secrets and its part of the fingerprints.
func TestKindPlannedThroughTheInterface(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	facts := map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}, "web2": {Facts: &protocol.Facts{Resources: []protocol.ResourceFacts{{Kind: "note", Name: "memo"}}}}}
	without, err := Make(cfg, arts, facts)
	if err != nil {
		t.Fatal(err)
	}
	withKind(t, noteKind{}, RankAfterServices)
	p, err := Make(cfg, arts, facts)
	if err != nil {
		t.Fatal(err)
	}
	web1, web2 := p.Hosts[0], p.Hosts[1]
	last := web1.Steps[len(web1.Steps)-1]
	if last.Address != "note.memo" || last.Action != ActionCreate || len(last.Secrets) != 1 || string(last.Spec) != `{"text":"web1.example.internal"}` {
		t.Fatalf("web1's last step: %+v", last)
	}
	if len(web2.Steps) != 1 || web2.Steps[0].Action != ActionNoOp {
		t.Fatalf("web2: %+v", web2.Steps)
	}
	if p.Summary.Add != without.Summary.Add+1 {
		t.Errorf("summary: %+v, without the kind %+v", p.Summary, without.Summary)
	}
	if r := p.Rollouts[len(p.Rollouts)-1]; r.Address != "note.memo" || r.Gated || len(r.Batches) != 1 || r.Batches[0][0] != "web1" {
		t.Errorf("rollout: %+v", r)
	}
	found := false
	for _, u := range web1.Uploads {
		found = found || (u.Name == "db.exe" && contains(u.For, "memo"))
	}
	if !found {
		t.Errorf("uploads: %+v", web1.Uploads)
	}
	if p.Fingerprints.Config == without.Fingerprints.Config || p.Fingerprints.Secrets == without.Fingerprints.Secrets {
		t.Error("the kind's releases are not part of the fingerprints")
	}
	if got, err := SecretsFor(cfg, last, "web1"); err != nil || got["pw"] != "s3cret" {
		t.Errorf("secrets: %v %v", got, err)
	}
	if _, err := SecretsFor(cfg, &Step{Address: "x.y", Kind: "x", Service: "y"}, "web1"); err == nil {
		t.Error("secrets of an unknown kind")
	}
	cfp, _, err := ConfigFingerprints(cfg, p.Fingerprints.Artifacts)
	if err != nil || cfp != p.Fingerprints.Config {
		t.Errorf("a saved plan's config fingerprint is not reproduced: %v", err)
	}
}
