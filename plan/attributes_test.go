package plan_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
	_ "github.com/gsd-deploy/gsd/plan/firewall"
	_ "github.com/gsd-deploy/gsd/plan/task"
)

// The attribute walks live outside package plan so that they see every
// kind of resource: the kinds' packages import plan.
var (
	base = plan.BaseForTest
	arts = plan.ArtsForTest
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
	"firewall.ports": `[8080]`, "firewall.protocol": `"tcp"`, "firewall.profiles": `["domain"]`, "firewall.remote_addresses": `["10.0.0.0/8"]`,
}

// serviceVariants set each attribute to another value (and, where the
// schema needs it, another to match; "" removes an attribute).
var serviceVariants = map[string]map[string]string{
	"for_each":                  {"for_each": `toset(["a"])`},
	"hosts":                     {"hosts": `["web1", "web2"]`},
	"binary":                    {"binary": `build.db`},
	"version":                   {"version": `"2.0.0"`},
	"mode":                      {"mode": `"native"`, "log.max_size": "", "log.keep": "", "work_dir": ""},
	"display_name":              {"display_name": `"API 2"`},
	"description":               {"description": `"Serves more"`},
	"args":                      {"args": `["-b"]`},
	"start":                     {"start": `"manual"`},
	"depends_on":                {"depends_on": `["Tcpip", "Dnscache"]`},
	"env":                       {"env": `{ A = "2" }`},
	"stop_timeout":              {"stop_timeout": `"40s"`},
	"adopt":                     {"adopt": `true`},
	"account.name":              {"account.name": `".\\other"`},
	"account.password":          {"account.password": `"another-password"`},
	"file.content":              {"file.content": `"two"`},
	"file.source":               {"file.content": "", "file.source": `"source.txt"`},
	"file.path":                 {"file.path": `"D:\\conf\\one.yaml"`},
	"file.on_change":            {"file.on_change": `"reload"`},
	"recovery.actions":          {"recovery.actions": `["run/10s"]`},
	"recovery.reset_after":      {"recovery.reset_after": `"1h"`},
	"recovery.on_non_crash":     {"recovery.on_non_crash": `true`},
	"recovery.command":          {"recovery.command": `"C:\\fix\\two.exe"`},
	"health.http":               {"health.http": `"http://localhost:9090/healthz"`},
	"health.tcp":                {"health.http": "", "health.body_match": "", "health.tcp": `"localhost:8080"`},
	"health.running":            {"health.http": "", "health.body_match": "", "health.running": `true`},
	"health.body_match":         {"health.body_match": `"fine"`},
	"health.timeout":            {"health.timeout": `"60s"`},
	"health.interval":           {"health.interval": `"2s"`},
	"health.healthy_after":      {"health.healthy_after": `"5s"`},
	"rollout.max_parallel":      {"rollout.max_parallel": `2`, "hosts": `["web1", "web2"]`},
	"rollout.canary":            {"rollout.canary": `1`, "hosts": `["web1", "web2"]`},
	"rollout.canary_pause":      {"rollout.canary_pause": `true`, "rollout.canary": `1`, "hosts": `["web1", "web2"]`},
	"rollout.pause":             {"rollout.pause": `"10s"`},
	"rollout.max_failures":      {"rollout.max_failures": `1`},
	"rollout.auto_rollback":     {"rollout.auto_rollback": `false`, "rollout.rollback_scope": ""},
	"rollout.rollback_scope":    {"rollout.rollback_scope": `"all"`},
	"log.dir":                   {"log.dir": `"D:\\logs\\api"`},
	"log.max_size":              {"log.max_size": `"20MB"`},
	"log.keep":                  {"log.keep": `7`},
	"work_dir":                  {"work_dir": `"D:\\data\\api2"`},
	"firewall.ports":            {"firewall.ports": `[8080, "9000-9010"]`},
	"firewall.protocol":         {"firewall.protocol": `"udp"`},
	"firewall.profiles":         {"firewall.profiles": `["domain", "public"]`},
	"firewall.remote_addresses": {"firewall.remote_addresses": `["LocalSubnet"]`},
}

// serviceHCL writes a service block from attribute paths.
func serviceHCL(attrs map[string]string) string {
	return blockHCL(`service "api"`, attrs, []string{"account", "file", "recovery", "health", "rollout", "log", "firewall"})
}

// blockHCL writes a block (header, such as `service "api"`) from
// attribute paths: "a" is an attribute, "b.a" one of nested block b,
// written in the order nested lists them ("" removes an attribute).
func blockHCL(header string, attrs map[string]string, nested []string) string {
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
	b.WriteString(header + " {\n" + strings.Join(top, "\n") + "\n")
	for _, blk := range nested {
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
	if len(cfg.Services) != 1 {
		t.Fatalf("want one service, have %d", len(cfg.Services))
	}
	svc := cfg.Services[0] // api, or api-a with for_each
	full := plan.Spec(svc, arts[plan.ArtifactKey(svc.Binary)])
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
	// Every kind's releases: a service's firewall block is a rule.
	desired, err := plan.DesiredForTest(cfg, arts)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]map[string]any{}
	for kind, byKey := range desired {
		kinds[kind] = map[string]any{}
		for key, d := range byKey {
			kinds[kind][key] = struct{ Spec, Secrets any }{d.Spec, d.Secrets}
		}
	}
	b, _ := json.Marshal(struct {
		Spec    any
		Secrets map[string]string
		Hosts   []string
		Rollout *plan.Rollout
		Kinds   map[string]map[string]any
	}{full, full.Secrets(), svc.Hosts, plan.RolloutOf(svc, svc.Hosts), kinds})
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
		if !slices.Contains(config.ServiceAttributes(), attr) {
			t.Errorf("case %s is not an attribute of the schema", attr)
		}
	}
}

// TestEveryHostValueReachesItsRelease does for each.host what the test
// above does for service attributes: each value a service can read of
// its host (name, address, environment, labels, vars) changes the release
// on that host when the host's block changes, and on no other host.
func TestEveryHostValueReachesItsRelease(t *testing.T) {
	hosts := func(web1 string) string {
		return `
host "web1" {
  address     = "web1.example.internal"
  environment = "blue"
  labels      = { role = "web", zone = "a" }
  vars        = { port = 8081, token = var.pw }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
host "web2" {
  address     = "web2.example.internal"
  environment = "blue"
  labels      = { role = "web", zone = "b" }
  vars        = { port = 8082, token = "public" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
` + web1
	}
	const service = `
variable "pw" {
  type      = string
  sensitive = true
  default   = "db-s3cret"
}
build "api" {
  package = "./cmd/api"
}
service "api" {
  hosts = { role = "web" }
  binary = build.api
  args   = ["-name", each.host.name, "-address", each.host.address, "-env", each.host.environment, "-zone", each.host.labels.zone]
  env    = { PORT = each.host.vars.port, TOKEN = each.host.vars.token }
}
`
	releases := func(src string) map[string]string {
		t.Helper()
		cfg, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(src)}, Dir: t.TempDir(), Environment: "blue"})
		if diags.HasErrors() {
			t.Fatalf("%s\n%s", diags.Error(), src)
		}
		out := map[string]string{}
		svc := cfg.Service("api")
		for _, h := range svc.Hosts {
			spec := plan.Spec(svc.On(h), arts[plan.ArtifactKey(svc.Binary)])
			b, _ := json.Marshal(struct {
				Spec    any
				Secrets map[string]string
			}{spec, spec.Secrets()})
			out[h] = string(b)
		}
		return out
	}
	want := releases(hosts("") + service)
	if want["web1"] == want["web2"] {
		t.Fatal("web1 and web2 have one release, though their values differ")
	}
	for what, from := range map[string][2]string{
		"name":           {`host "web1" {`, `host "web9" {`},
		"address":        {`"web1.example.internal"`, `"web9.example.internal"`},
		"environment":    {"environment = \"blue\"\n  labels      = { role = \"web\", zone = \"a\" }", "labels      = { role = \"web\", zone = \"a\" }"},
		"labels":         {`zone = "a"`, `zone = "c"`},
		"vars":           {`port = 8081`, `port = 9091`},
		"sensitive vars": {`token = var.pw`, `token = "other"`},
	} {
		src := hosts("") + service
		if !strings.Contains(src, from[0]) {
			t.Fatalf("%s: %q not in the configuration", what, from[0])
		}
		got := releases(strings.Replace(src, from[0], from[1], 1))
		web1 := "web1"
		if what == "name" {
			web1 = "web9"
		}
		if got[web1] == want["web1"] {
			t.Errorf("changing host web1's %s changed nothing in its release", what)
		}
		if got["web2"] != want["web2"] {
			t.Errorf("changing host web1's %s changed web2's release", what)
		}
	}
}

// taskBase is a task that sets every attribute, as paths of the schema
// (config.TaskAttributes) to HCL expressions.
var taskBase = map[string]string{
	"hosts": `["web1"]`, "binary": `build.api`, "version": `"1.0.0"`, "description": `"Nightly"`, "args": `["-a"]`,
	"env": `{ A = "1" }`, "work_dir": `"D:\\jobs"`, "time_limit": `"1h"`, "if_running": `"ignore"`, "enabled": `true`,
	"account.name": `".\\svc"`, "account.password": `var.pw`,
	"trigger.daily": `"02:00"`,
	"retry.count":   `3`, "retry.interval": `"5m"`,
	"firewall.ports": `[8080]`, "firewall.protocol": `"tcp"`, "firewall.profiles": `["domain"]`, "firewall.remote_addresses": `["10.0.0.0/8"]`,
}

// taskVariants set each task attribute to another value.
var taskVariants = map[string]map[string]string{
	"hosts":                     {"hosts": `["web1", "web2"]`},
	"binary":                    {"binary": `build.db`},
	"version":                   {"version": `"2.0.0"`},
	"description":               {"description": `"Nightly, again"`},
	"args":                      {"args": `["-b"]`},
	"env":                       {"env": `{ A = "2" }`},
	"work_dir":                  {"work_dir": `"D:\\other"`},
	"time_limit":                {"time_limit": `"2h"`},
	"if_running":                {"if_running": `"queue"`},
	"enabled":                   {"enabled": `false`},
	"account.name":              {"account.name": `".\\other"`},
	"account.password":          {"account.password": `"another-password"`},
	"trigger.daily":             {"trigger.daily": `"03:00"`},
	"trigger.weekly":            {"trigger.daily": "", "trigger.weekly": `"02:00"`, "trigger.days": `["monday"]`},
	"trigger.days":              {"trigger.daily": "", "trigger.weekly": `"02:00"`, "trigger.days": `["monday", "friday"]`},
	"trigger.every":             {"trigger.daily": "", "trigger.every": `"15m"`},
	"trigger.at_startup":        {"trigger.daily": "", "trigger.at_startup": `true`},
	"trigger.at_logon":          {"trigger.daily": "", "trigger.at_logon": `true`},
	"retry.count":               {"retry.count": `4`},
	"retry.interval":            {"retry.interval": `"10m"`},
	"firewall.ports":            {"firewall.ports": `[8081]`},
	"firewall.protocol":         {"firewall.protocol": `"udp"`},
	"firewall.profiles":         {"firewall.profiles": `["public"]`},
	"firewall.remote_addresses": {"firewall.remote_addresses": `["LocalSubnet"]`},
}

// taskHCL writes a task block from attribute paths.
func taskHCL(attrs map[string]string) string {
	return blockHCL(`task "nightly"`, attrs, []string{"account", "trigger", "retry", "firewall"})
}

// taskReached is every kind's releases a task's configuration turns into
// (the task's, its firewall rule's), secrets included, with its hosts.
func taskReached(t *testing.T, attrs map[string]string) string {
	t.Helper()
	cfg, diags := config.Load(config.Options{Sources: map[string][]byte{"main.hcl": []byte(base + taskHCL(attrs))}, Dir: t.TempDir()})
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags.Error(), taskHCL(attrs))
	}
	desired, err := plan.DesiredForTest(cfg, arts)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]map[string]any{}
	for kind, byKey := range desired {
		kinds[kind] = map[string]any{}
		for key, d := range byKey {
			kinds[kind][key] = struct{ Spec, Secrets, Hosts any }{d.Spec, d.Secrets, d.Hosts}
		}
	}
	b, _ := json.Marshal(kinds)
	return string(b)
}

// TestEveryTaskAttributeReachesTheRelease does for task blocks what the
// service walk does: each attribute, set to another value, changes what
// reaches the host.
func TestEveryTaskAttributeReachesTheRelease(t *testing.T) {
	want := taskReached(t, taskBase)
	if !strings.Contains(want, `"task"`) || !strings.Contains(want, `"firewall"`) {
		t.Fatalf("the task's releases: %s", want)
	}
	for _, attr := range config.TaskAttributes() {
		variant, ok := taskVariants[attr]
		if !ok {
			t.Errorf("task attribute %s has no case here: wire it into the release (plan/task) or refuse it in config, then add it", attr)
			continue
		}
		attrs := maps.Clone(taskBase)
		maps.Copy(attrs, variant)
		if got := taskReached(t, attrs); got == want {
			t.Errorf("setting %s to %s changed nothing that reaches the host: the attribute is dropped", attr, variant[attr])
		}
	}
	for attr := range taskVariants {
		if !slices.Contains(config.TaskAttributes(), attr) {
			t.Errorf("case %s is not an attribute of the task schema", attr)
		}
	}
}
