package views

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/plan"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s (run go test ./views -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n%s", path, got)
	}
}

func s(v string) *string { return &v }

// samplePlan has one of everything a plan can show.
func samplePlan() *plan.Plan {
	sha := func(c string) string { return strings.Repeat(c, 64) }
	return &plan.Plan{
		FormatVersion: plan.FormatVersion,
		Summary:       plan.Summary{Add: 1, Change: 2, Destroy: 1, FailedHosts: 1},
		Fingerprints:  plan.Fingerprints{Config: sha("c"), Artifacts: map[string]string{"build.api": sha("a")}, Facts: map[string]string{"web1": sha("f")}},
		Hosts: []*plan.HostPlan{
			{
				Host: "web1", Address: "web1.example.internal", Transport: "winrm",
				Repairs: []string{`C:\ProgramData\gsd\bin\` + sha("b") + `\gsd-agent.exe had SHA-256 ` + sha("e") + `; reinstalled`},
				Uploads: []plan.Upload{{SHA256: sha("a"), Size: 9 << 20, Name: "api.exe", For: []string{"api"}}},
				Steps: []*plan.Step{
					{Address: "service.db", Kind: "service", Service: "db", Action: plan.ActionCreate, Effect: "start", Secrets: []string{"env.DB_PASSWORD"}, Version: "dddddddddddd", Start: true,
						Changes: []plan.Change{{Attribute: "binary", New: s("dddddddddddd")}, {Attribute: "start", New: s("auto")},
							{Attribute: "account", New: s(`CORP\db$`), Note: `group managed service account; gsd grants it "Log on as a service"`},
							{Attribute: "args", New: s(`["-listen",":8080"]`)}, {Attribute: "env.DB_PASSWORD", New: s("(sensitive)"), Sensitive: true}},
						Problems: []string{`host web1 cannot run the service as CORP\db$: this computer may not retrieve the account's password`}},
					{Address: "service.api", Kind: "service", Service: "api", Action: plan.ActionReplace, Effect: "restart", From: "r-0123456789abcdef0123", OldVersion: "1.0.0", Version: "1.1.0", Restart: true,
						RestartReasons: []string{"binary changed", "environment changed"},
						Changes: []plan.Change{{Attribute: "binary", Old: s("000000000000"), New: s("aaaaaaaaaaaa"), Restart: true},
							{Attribute: "env.MODE", Old: s("(changed)"), New: s("prod"), Restart: true},
							{Attribute: "display_name", Old: s("Old name"), New: s("Orders API")},
							{Attribute: "account", Old: s(`NT SERVICE\api`), New: s("LocalSystem"), Restart: true, Note: "highest privilege"}}},
					{Address: "service.cache", Kind: "service", Service: "cache", Action: plan.ActionUpdate, Effect: "reload", From: "r-aaaabbbbccccddddeeee", Reload: true,
						Changes: []plan.Change{{Attribute: "file.config.yaml", Old: s("111111111111"), New: s("222222222222")},
							{Attribute: "account.password", Old: s("(sensitive)"), New: s("(sensitive)"), Sensitive: true},
							{Attribute: "recovery", Old: s("restart/5s,none reset_after=24h on_non_crash=false")}}},
					{Address: "service.same", Service: "same", Action: plan.ActionNoOp},
					{Address: "service.old", Kind: "service", Service: "old", Action: plan.ActionDelete, Effect: "stop", From: "r-99990000111122223333", OldVersion: "0.9.0"},
				},
			},
			{Host: "web2", Address: "web2.example.internal", Transport: "ssh", Error: "dial tcp web2.example.internal:22: connect: connection refused"},
			{Host: "web3", Address: "web3.example.internal", Transport: "winrm", Steps: []*plan.Step{{Address: "service.same", Service: "same", Action: plan.ActionNoOp}}},
		},
		Rollouts: []*plan.Rollout{
			{Address: "service.db", Service: "db", Batches: [][]string{{"web1"}}, AutoRollback: true, RollbackScope: "batch", Gated: true},
			{Address: "service.api", Service: "api", Batches: [][]string{{"web1"}, {"web3", "web4"}, {"web5"}}, Canary: true, CanaryPause: true, PauseMS: 5000,
				MaxFailures: 1, AutoRollback: true, RollbackScope: "all", Gated: true},
			{Address: "service.old", Service: "old", Batches: [][]string{{"web1", "web3"}}},
		},
	}
}

func TestPlanGolden(t *testing.T) {
	p := samplePlan()
	var human, js bytes.Buffer
	if err := Plan(&human, p, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.txt", human.Bytes())
	if err := PlanJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.json", js.Bytes())

	// The JSON form round-trips to the same plan the text came from.
	var back plan.Plan
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	Plan(&again, &back, false)
	if again.String() != human.String() {
		t.Errorf("human plan rendered from the JSON differs")
	}
	if strings.Contains(human.String(), "service.same") || strings.Contains(human.String(), "host.web3") {
		t.Errorf("unchanged services and hosts must not be listed")
	}
}

func TestPlanNoChanges(t *testing.T) {
	var b bytes.Buffer
	Plan(&b, &plan.Plan{Hosts: []*plan.HostPlan{{Host: "web1", Steps: []*plan.Step{{Action: plan.ActionNoOp}}}}}, true)
	if b.String() != "No changes. The hosts match the configuration.\n" {
		t.Errorf("got %q", b.String())
	}
}
