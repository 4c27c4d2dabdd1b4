package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

func TestPlanFileRoundTripWithoutSecrets(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}})
	var b bytes.Buffer
	if err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "db-s3cret") {
		t.Fatalf("the plan file holds a secret")
	}
	back, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Summary != p.Summary || back.Fingerprints.Config != p.Fingerprints.Config || len(back.Hosts[0].Steps) != 2 {
		t.Errorf("round trip lost data: %+v", back.Summary)
	}
}

func TestReadRefusesOtherFiles(t *testing.T) {
	for _, in := range []string{"", "{}", `{"magic":"gsd-plan"}`, `{"magic":"gsd-plan","format_version":99,"hosts":[]}`, "not json", `{"magic":"x","format_version":1}`} {
		if _, err := Read(strings.NewReader(in)); err == nil {
			t.Errorf("Read(%q) accepted", in)
		}
	}
	_, err := Read(strings.NewReader(`{"magic":"gsd-plan","format_version":99,"hosts":[]}`))
	if err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("a future format must be named: %v", err)
	}
}

func TestCheckSavedSaysWhatChanged(t *testing.T) {
	cfg := loadConfig(t, base+apiAndDB)
	facts := map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}}
	saved := mustMake(t, cfg, facts)
	byPath := map[string]string{}
	for sha, a := range saved.Artifacts {
		byPath[a.Path] = sha
	}
	hashes := func(path string) (string, error) { return byPath[path], nil }
	cfp, sfp, err := ConfigFingerprints(cfg, saved.Fingerprints.Artifacts)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSaved(saved, cfp, sfp, facts, hashes); err != nil {
		t.Fatalf("nothing changed: %v", err)
	}
	rotated := loadConfig(t, strings.Replace(base, "db-s3cret", "rotated", 1)+apiAndDB)
	changedFacts := map[string]HostFacts{"web1": {Facts: &protocol.Facts{Artifacts: []string{"x"}}}}
	rebuilt := func(path string) (string, error) { return "other", nil }
	cfp2, sfp2, err := ConfigFingerprints(rotated, saved.Fingerprints.Artifacts)
	if err != nil || cfp2 != cfp {
		t.Fatalf("a changed secret changed the config fingerprint (%v)", err)
	}
	err = CheckSaved(saved, cfp2, sfp2, changedFacts, rebuilt)
	if err == nil {
		t.Fatal("want stale")
	}
	for _, want := range []string{"a secret value", "was rebuilt with a different hash", "host web1 changed", "gsd plan again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "rotated") || strings.Contains(err.Error(), "db-s3cret") {
		t.Errorf("the error names a secret: %v", err)
	}
	edited := loadConfig(t, base+strings.Replace(apiAndDB, `"1.0.0"`, `"1.0.1"`, 1))
	cfp3, sfp3, _ := ConfigFingerprints(edited, saved.Fingerprints.Artifacts)
	if err := CheckSaved(saved, cfp3, sfp3, facts, hashes); err == nil || !strings.Contains(err.Error(), "configuration") {
		t.Errorf("an edited configuration: %v", err)
	}
}
