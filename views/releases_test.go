package views

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleReleases() *Releases {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	sha := func(c string) string { return strings.Repeat(c, 64) }
	return &Releases{Address: "service.api", CheckedAt: now, Hosts: []*HostReleases{
		{Host: "web1", Releases: []*KeptRelease{
			{ID: "r-22220000aaaabbbbcccc", Version: "1.1.0", Artifact: sha("b"), Activated: now.Add(-3 * time.Hour), By: "alice@laptop",
				Changes: []string{"binary", "version", "env.MODE"}, Active: true},
			{ID: "r-11110000aaaabbbbcccc", Version: "1.0.0", Artifact: sha("a"), Activated: now.Add(-72 * time.Hour), By: "ci@runner", Changes: []string{}},
		}},
		{Host: "web2", Error: "dial tcp web2.example.internal:5985: connect: connection refused", Releases: []*KeptRelease{}},
		{Host: "web3", Releases: []*KeptRelease{}},
	}}
}

func TestReleasesGolden(t *testing.T) {
	var human, js bytes.Buffer
	if err := ReleasesTable(&human, sampleReleases(), false); err != nil {
		t.Fatal(err)
	}
	golden(t, "releases.txt", human.Bytes())
	if err := ReleasesJSON(&js, sampleReleases()); err != nil {
		t.Fatal(err)
	}
	golden(t, "releases.json", js.Bytes())
	var back Releases
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Hosts) != 3 || !back.Hosts[0].Releases[0].Active {
		t.Fatalf("the JSON does not read back: %v %+v", err, back)
	}
}
