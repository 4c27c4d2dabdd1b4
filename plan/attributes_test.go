package plan

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/config"
)

// serviceBase is a service that sets every attribute, as paths of the
// schema (config.ServiceAttributes) to HCL expressions.
var serviceBase = map[string]string{
	"hosts": `["web1"]`, "binary": `build.api`, "version": `"1.0.0"`, "mode": `"wrapped"`,
	"display_name": `"API"`, "description": `"Serves"`, "args": `["-a"]`, "start": `"auto"`,
	"depends_on": `["Tcpip"]`, "env": `{ A = "1" }`, "stop_timeout": `"20s"`, "adopt": `false`,
	"account.name": `".\\svc"`, "account.password": `var.pw`,
	"file.content": `"one"`, "file.on_change": `"restart"`,
	"recovery.actions": `["run/5s"]`, "recovery.reset_after": `"24h"`, "recovery.on_non_crash": `false`, "recovery.command": `"C:\\fix\\one.exe"`,
	"health.http": `"http://localhost:8080/healthz"`, "health.body_match": `"ok"`, "health.timeout": `"30s"`, "health.interval": `"1s"`, "health.healthy_after": `"2s"`,
	"rollout.max_parallel": `1`, "rollout.canary": `0`, "rollout.canary_pause": `false`, "rollout.pause": `"0s"`, "rollout.max_failures": `0`,
	"rollout.auto_rollback": `true`, "rollout.rollback_scope": `"batch"`,
	"log.max_size": `"10MB"`, "log.keep": `5`, "work_dir": `"D:\\data\\api"`,
}

// serviceVariants set each attribute to another value (and, where the
// schema needs it, another to match; "" removes an attribute).
var serviceVariants = map[string]map[string]string{
	"hosts":                  {"hosts": `["web1", "web2"]`},
	"binary":                 {"binary": `build.db`},
	"version":                {"version": `"2.0.0"`},
	"mode":                   {"mode": `"native"`, "log.max_size": "", "log.keep": "", "work_dir": ""},
	"display_name":           {"display_name": `"API 2"`},
	"description":            {"description": `"Serves more"`},
	"args":                   {"args": `["-b"]`},
	"start":                  {"start": `"manual"`},
	"depends_on":             {"depends_on": `["Tcpip", "Dnscache"]`},
	"env":                    {"env": `{ A = "2" }`},
	"stop_timeout":           {"stop_timeout": `"40s"`},
	"adopt":                  {"adopt": `true`},
	"account.name":           {"account.name": `".\\other"`},
	"account.password":       {"account.password": `"another-password"`},
	"file.content":           {"file.content": `"two"`},
	"file.source":            {"file.content": "", "file.source": `"source.txt"`},
	"file.path":              {"file.path": `"D:\\conf\\one.yaml"`},
	"file.on_change":         {"file.on_change": `"reload"`},
	"recovery.actions":       {"recovery.actions": `["run/10s"]`},
	"recovery.reset_after":   {"recovery.reset_after": `"1h"`},
	"recovery.on_non_crash":  {"recovery.on_non_crash": `true`},
	"recovery.command":       {"recovery.command": `"C:\\fix\\two.exe"`},
	"health.http":            {"health.http": `"http://localhost:9090/healthz"`},
	"health.tcp":             {"health.http": "", "health.body_match": "", "health.tcp": `"localhost:8080"`},
	"health.running":         {"health.http": "", "health.body_match": "", "health.running": `true`},
	"health.body_match":      {"health.body_match": `"fine"`},
	"health.timeout":         {"health.timeout": `"60s"`},
	"health.interval":        {"health.interval": `"2s"`},
	"health.healthy_after":   {"health.healthy_after": `"5s"`},
	"rollout.max_parallel":   {"rollout.max_parallel": `2`, "hosts": `["web1", "web2"]`},
	"rollout.canary":         {"rollout.canary": `1`, "hosts": `["web1", "web2"]`},
	"rollout.canary_pause":   {"rollout.canary_pause": `true`, "rollout.canary": `1`, "hosts": `["web1", "web2"]`},
	"rollout.pause":          {"rollout.pause": `"10s"`},
	"rollout.max_failures":   {"rollout.max_failures": `1`},
	"rollout.auto_rollback":  {"rollout.auto_rollback": `false`, "rollout.rollback_scope": ""},
	"rollout.rollback_scope": {"rollout.rollback_scope": `"all"`},
	"log.dir":                {"log.dir": `"D:\\logs\\api"`},
	"log.max_size":           {"log.max_size": `"20MB"`},
	"log.keep":               {"log.keep": `7`},
	"work_dir":               {"work_dir": `"D:\\data\\api2"`},
}

// serviceHCL writes a service block from attribute paths.
func serviceHCL(attrs map[string]string) string {
	blocks := map[string][]string{}
	var top []string
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := attrs[k]
		if v == "" {
			continue
		}
		if blk, attr, ok := strings.Cut(k, "."); ok {
			blocks[blk] = append(blocks[blk], fmt.Sprintf("    %s = %s", attr, v))
		} else {
			top = append(top, fmt.Sprintf("  %s = %s", k, v))
		}
	}
	var b strings.Builder
	b.WriteString("service \"api\" {\n" + strings.Join(top, "\n") + "\n")
	for _, blk := range []string{"account", "file", "recovery", "health", "rollout", "log"} {
		if len(blocks[blk]) == 0 {
			continue
		}
		label := ""
		if blk == "file" {
			label = ` "app.yaml"`
		}
		fmt.Fprintf(&b, "  %s%s {\n%s\n  }\n", blk, label, strings.Join(blocks[blk], "\n"))
	}
	return b.String() + "}\n"
}

// reached is everything a service's configuration turns into: the release
// the agent receives (secrets included), where it goes, and its rollout
// and health gate.
func reached(t *testing.T, attrs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "source.txt"), []byte("from a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(base+serviceHCL(attrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(config.Options{Paths: []string{dir}})
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags.Error(), serviceHCL(attrs))
	}
	svc := cfg.Service("api")
	full := Spec(svc, arts[ArtifactKey(svc.Binary)])
	// What travels to the agent: the blind spec, and the secrets apart.
	var wire struct{ Name string }
	raw, _ := json.Marshal(full.Blind())
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatal(err)
	}
	var blind = full.Blind()
	back, err := blind.WithSecrets(full.Secrets())
	if err != nil || !reflect.DeepEqual(back, full) {
		t.Fatalf("the release does not survive the way to the agent (%v):\n got %+v\nwant %+v", err, back, full)
	}
	b, _ := json.Marshal(struct {
		Spec    any
		Secrets map[string]string
		Hosts   []string
		Rollout *Rollout
	}{full, full.Secrets(), svc.Hosts, RolloutOf(svc, svc.Hosts)})
	return string(b)
}

// TestEveryServiceAttributeReachesTheRelease walks every attribute of the
// service schema, sets it to another value, and proves that the release
// the agent receives (or the rollout) changes with it: an attribute that
// is accepted and then dropped fails here.
func TestEveryServiceAttributeReachesTheRelease(t *testing.T) {
	want := reached(t, serviceBase)
	for _, attr := range config.ServiceAttributes() {
		variant, ok := serviceVariants[attr]
		if !ok {
			t.Errorf("service attribute %s has no case here: wire it into the release (plan.Spec) or refuse it in config, then add it", attr)
			continue
		}
		attrs := map[string]string{}
		for k, v := range serviceBase {
			attrs[k] = v
		}
		for k, v := range variant {
			attrs[k] = v
		}
		if got := reached(t, attrs); got == want {
			t.Errorf("setting %s to %s changed nothing that reaches the host: the attribute is dropped", attr, variant[attr])
		}
	}
	for attr := range serviceVariants {
		if !contains(config.ServiceAttributes(), attr) {
			t.Errorf("case %s is not an attribute of the schema", attr)
		}
	}
}
