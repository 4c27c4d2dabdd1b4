package agent

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/state"
)

// noteHandler is the smallest kind there is: a resource is a note the
// fake host keeps by name. A note whose text is "fail" cannot be written.
type noteHandler struct {
	notes   map[string]string
	removed []string
}

type noteSpec struct {
	Text    string `json:"text"`
	Version string `json:"version,omitempty"`
}

func (h *noteHandler) Check(name string, raw json.RawMessage, secrets map[string]string) (releases.Record, error) {
	var spec noteSpec
	if err := json.Unmarshal(raw, &spec); err != nil || spec.Text == "" {
		return releases.Record{}, Errorf(protocol.CodeBadRequest, "note %s: no text", name)
	}
	return releases.Record{Spec: raw, Secrets: secrets}, nil
}

func (h *noteHandler) Apply(name string, rec releases.Record, effect string, prev *state.Resource, emit func(string)) (json.RawMessage, map[string]string, error) {
	var spec noteSpec
	json.Unmarshal(rec.Spec, &spec)
	if spec.Text == "fail" {
		return nil, nil, errors.New("the host refused the note")
	}
	if effect == protocol.EffectStop {
		spec.Text = "(disabled) " + spec.Text
	}
	h.notes[name] = spec.Text
	return json.RawMessage(`{"written":true}`), map[string]string{"colour": "not readable on this host"}, nil
}

func (h *noteHandler) Remove(name string, r *state.Resource, emit func(string)) error {
	delete(h.notes, name)
	h.removed = append(h.removed, name)
	return nil
}

func (h *noteHandler) Observe(name string, r *state.Resource) protocol.ResourceFacts {
	text, ok := h.notes[name]
	f := protocol.ResourceFacts{Installed: ok}
	if ok {
		f.Status = &protocol.ResourceStatus{State: "written", Details: []protocol.StatusDetail{{Name: "text", Value: text}}}
	}
	if string(r.Recorded) != `{"written":true}` {
		f.Drift = []string{"recorded"}
	}
	return f
}

func noteArgs(name, text string) protocol.StageReleaseArgs {
	return protocol.StageReleaseArgs{Kind: "note", Name: name, Spec: protocol.MustArgs(noteSpec{Text: text, Version: "v-" + text}),
		Secrets: map[string]string{"ink": "secret-" + text}}
}

// TestHandlerKindReleases drives a kind the agent knows only as a
// Handler through the release ops: stage, activate, facts, a failed
// activation that returns to the release before, delete.
func TestHandlerKindReleases(t *testing.T) {
	root := testfs.TempDir(t)
	notes := &noteHandler{notes: map[string]string{}}
	a := New(Options{Root: root, Services: newFakeServices(root), Kinds: map[string]Handler{"note": notes}})
	s := startSession(t, a)
	defer s.close()

	var first, second protocol.StageReleaseResult
	s.call("1", protocol.OpStageRelease, noteArgs("memo", "hello"), &first)
	var res protocol.ActivateResult
	progress := s.call("2", protocol.OpActivate, protocol.ActivateArgs{Kind: "note", Name: "memo", Release: first.ID, Effect: protocol.EffectNone}, &res)
	if notes.notes["memo"] != "hello" || !res.Changed || res.Recorded["colour"] == "" {
		t.Fatalf("activate: %+v, host %v", res, notes.notes)
	}
	if len(progress) == 0 || !strings.Contains(progress[len(progress)-1].Message, "colour written") {
		t.Errorf("the gap is not reported: %+v", progress)
	}
	facts, err := a.Facts()
	if err != nil {
		t.Fatal(err)
	}
	rf := facts.Resource("note", "memo")
	if rf == nil || !rf.Installed || rf.Current == nil || rf.Current.ID != first.ID || rf.Current.Version != "v-hello" ||
		len(rf.Drift) != 0 || rf.Status.State != "written" || !strings.Contains(string(rf.LastApplied), "hello") {
		t.Fatalf("facts: %+v", rf)
	}
	// Secrets are reported as salted hashes only.
	if h, ok := rf.Secrets["ink"]; !ok || !h.Matches("secret-hello") || h.Matches("secret-other") {
		t.Errorf("secret hashes: %+v", rf.Secrets)
	}
	if b, _ := json.Marshal(facts); strings.Contains(string(b), "secret-hello") {
		t.Error("facts hold a secret value")
	}

	// A release the host refuses: the agent returns to the one before.
	s.call("3", protocol.OpStageRelease, noteArgs("memo", "fail"), &second)
	ev := s.callErr("4", protocol.OpActivate, protocol.ActivateArgs{Kind: "note", Name: "memo", Release: second.ID, Effect: protocol.EffectNone}, protocol.CodeActivationFailed)
	if !strings.Contains(ev.Error.Message, "back on "+first.ID) || notes.notes["memo"] != "hello" {
		t.Fatalf("failed activation: %s; host %v", ev.Error.Message, notes.notes)
	}
	if j, _ := state.LoadJournal(state.Layout{Root: root}); j != nil {
		t.Fatalf("journal left: %+v", j)
	}

	// Unknown kinds and bad specs are refused before anything is stored.
	s.callErr("5", protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: "nope", Name: "memo", Spec: json.RawMessage(`{}`)}, protocol.CodeUnsupported)
	s.callErr("6", protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: "note", Name: "memo", Spec: json.RawMessage(`{}`)}, protocol.CodeBadRequest)

	var del map[string]bool
	s.call("7", protocol.OpDelete, protocol.DeleteArgs{Kind: "note", Name: "memo"}, &del)
	s.call("8", protocol.OpDelete, protocol.DeleteArgs{Kind: "note", Name: "other"}, nil)
	if !del["existed"] || len(notes.removed) != 1 || notes.notes["memo"] != "" {
		t.Fatalf("delete: %v, removed %v", del, notes.removed)
	}
	if facts, _ := a.Facts(); len(facts.Resources) != 0 {
		t.Fatalf("facts after delete: %+v", facts.Resources)
	}
	ids, _ := a.releases.IDs()
	for _, id := range ids {
		if id == first.ID {
			t.Errorf("release %s of the deleted note is still kept", id)
		}
	}
}

// TestHandlerKindNewResourceFails: a new resource whose first release
// fails, and cannot even be put in place disabled (as Windows refuses a
// task whose password is wrong), is forgotten: the journal ends instead
// of holding every later lock of the host, and the next apply makes the
// resource again.
func TestHandlerKindNewResourceFails(t *testing.T) {
	root := testfs.TempDir(t)
	notes := &noteHandler{notes: map[string]string{}}
	a := New(Options{Root: root, Services: newFakeServices(root), Kinds: map[string]Handler{"note": notes}})
	s := startSession(t, a)
	defer s.close()
	var rel protocol.StageReleaseResult
	s.call("1", protocol.OpStageRelease, noteArgs("memo", "fail"), &rel)
	ev := s.callErr("2", protocol.OpActivate, protocol.ActivateArgs{Kind: "note", Name: "memo", Release: rel.ID, Effect: protocol.EffectNone}, protocol.CodeActivationFailed)
	if !strings.Contains(ev.Error.Message, "could not be disabled either") || !strings.Contains(ev.Error.Message, "the next apply makes it again") {
		t.Fatalf("got %s", ev.Error.Message)
	}
	if j, _ := state.LoadJournal(state.Layout{Root: root}); j != nil {
		t.Fatalf("journal left: %+v", j)
	}
	if facts, _ := a.Facts(); len(facts.Resources) != 0 {
		t.Fatalf("a failed first release is still recorded: %+v", facts.Resources)
	}
	// The fixed release goes in on the next try.
	s.call("3", protocol.OpStageRelease, noteArgs("memo", "hello"), &rel)
	s.call("4", protocol.OpActivate, protocol.ActivateArgs{Kind: "note", Name: "memo", Release: rel.ID, Effect: protocol.EffectNone}, nil)
	if notes.notes["memo"] != "hello" {
		t.Fatalf("host %v", notes.notes)
	}
}
