package apply

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

// noteKind is a kind plan knows and apply has never heard of.
type noteKind struct{}

func (noteKind) Name() string { return "note" }
func (noteKind) Desired(*config.Config, func(config.Binary) *build.Artifact) (map[string]plan.Desired, error) {
	return nil, nil
}
func (noteKind) PlanHost(*plan.HostWork)                             {}
func (noteKind) Rollouts(*plan.Plan, *config.Config) []*plan.Rollout { return nil }
func (noteKind) Secrets(*config.Config, string, string) (map[string]string, bool) {
	return nil, false
}

func init() { plan.Register(noteKind{}, plan.RankAfterServices) }

// TestOtherKindsThroughReleaseOps: a kind apply knows only from plan's
// registry is staged, activated and deleted through the agent's generic
// release ops, naming its kind, and never health-gated.
func TestOtherKindsThroughReleaseOps(t *testing.T) {
	if _, ok := DefaultKinds()["note"].(releaseKind); !ok {
		t.Fatalf("DefaultKinds: %v", DefaultKinds())
	}
	note := func(name string, action plan.Action) *plan.Step {
		s := &plan.Step{Address: "note." + name, Kind: "note", Service: name, Action: action, Effect: protocol.EffectNone}
		if action != plan.ActionDelete {
			s.Spec = []byte(`{"text":"hi"}`)
		}
		return s
	}
	p := newPlan()
	addHost(p, "web1", nil, svcStep("api", plan.ActionUpdate, protocol.EffectRestart, "r-api-1"), note("memo", plan.ActionCreate), note("old", plan.ActionDelete))
	p.Rollouts = []*plan.Rollout{gatedRollout("api", []string{"web1"}), plan.AllAtOnce(p, "note.memo"), plan.AllAtOnce(p, "note.old")}
	f := newFleet()
	mustSucceed(t, Execute(context.Background(), p, f.dial, Options{}))
	want := []string{"lock", "stage_release api", "stage_release memo", "activate api@r-api-new restart", "health api",
		"activate memo@r-memo-new none", "delete", "unlock", "close"}
	if got := f.ops("web1"); !slices.Equal(got, want) {
		t.Fatalf("operations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c := f.conn(t, "web1")
	if st := args[protocol.StageReleaseArgs](t, c, protocol.OpStageRelease); st[1].Kind != "note" || string(st[1].Spec) != `{"text":"hi"}` {
		t.Errorf("stage_release: %+v", st)
	}
	if act := args[protocol.ActivateArgs](t, c, protocol.OpActivate); act[1].Kind != "note" || act[1].OnInterrupt != protocol.OnFailureRollback {
		t.Errorf("activate: %+v", act)
	}
	if del := args[protocol.DeleteArgs](t, c, protocol.OpDelete); len(del) != 1 || del[0] != (protocol.DeleteArgs{Kind: "note", Name: "old"}) {
		t.Errorf("delete: %+v", del)
	}
}
