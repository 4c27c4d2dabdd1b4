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

func TestStaleSaysWhatChanged(t *testing.T) {
	saved := Fingerprints{Config: "c1", Artifacts: map[string]string{"build.api": "a1"}, Facts: map[string]string{"web1": "f1", "web2": "f2"}}
	if err := Stale(saved, saved); err != nil {
		t.Fatalf("identical fingerprints: %v", err)
	}
	now := Fingerprints{Config: "c2", Artifacts: map[string]string{"build.api": "a2"}, Facts: map[string]string{"web1": "f1", "web3": "f3"}}
	err := Stale(saved, now)
	if err == nil {
		t.Fatal("want stale")
	}
	for _, want := range []string{"configuration", "artifact build.api was rebuilt", "host web2 is no longer part of it", "host web3 is new", "gsd plan again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "web1") {
		t.Errorf("an unchanged host is named: %v", err)
	}
}
