package views

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func n(v int) *int { return &v }

// sampleStatus has one of everything status can show: a healthy native
// service with a previous release, a wrapped one that restarted and
// drifted, one not deployed yet, one the configuration no longer has, a
// stopped one, a scheduled task with its runs, a firewall rule changed by
// hand, and an unreachable host.
func sampleStatus() *Status {
	sha := func(c string) string { return strings.Repeat(c, 64) }
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return &Status{
		FormatVersion: StatusFormatVersion,
		CheckedAt:     now,
		Summary:       StatusSummary{Services: 5, Resources: 2, Running: 3, Unhealthy: 2, Drifted: 4, FailedHosts: 1},
		Hosts: []*HostStatus{
			{
				Host: "web1", Address: "web1.example.internal", Transport: "winrm", AgentVersion: "0.4.0",
				Services: []*ServiceStatus{
					{Address: "service.api", Service: "api", Mode: "native", Deployed: true, InConfiguration: true,
						Release:  &Release{ID: "r-11110000aaaabbbbcccc", Version: "1.1.0", Artifact: sha("a"), Activated: now.Add(-3*time.Hour - 12*time.Minute)},
						Previous: &Release{Version: "1.0.0", Artifact: sha("0"), Activated: now.Add(-72 * time.Hour)},
						State:    "running", PID: 4100, Since: now.Add(-3*time.Hour - 12*time.Minute),
						Health: &HealthStatus{Status: Healthy, Kind: "http"}},
					{Address: "service.db", Service: "db", Mode: "native", InConfiguration: true,
						Drift: &Drift{Action: "create", Attributes: []string{"binary", "start", "env.DB_PASSWORD"}}},
					{Address: "service.old", Service: "old", Mode: "native", Deployed: true,
						Release: &Release{Artifact: sha("c"), Activated: now.Add(-30 * 24 * time.Hour)},
						State:   "stopped", ExitCode: 1067, Since: now.Add(-30 * 24 * time.Hour),
						Health: &HealthStatus{Status: Unhealthy, Kind: "running", Detail: "service stopped"},
						Drift:  &Drift{Action: "delete"}},
					{Address: "service.worker", Service: "worker", Mode: "wrapped", Deployed: true, InConfiguration: true,
						Release: &Release{Version: "2.0.0", Artifact: sha("b"), Activated: now.Add(-40 * time.Minute)},
						State:   "running", PID: 5200, Since: now.Add(-40 * time.Minute),
						Health:   &HealthStatus{Status: Unhealthy, Kind: "http", Detail: "HTTP 503"},
						Restarts: n(2),
						Wrapper: &WrapperStatus{Starts: 3, ChildPID: 4242, ChildSince: now.Add(-90 * time.Second),
							LastExitCode: n(3), LastExit: now.Add(-2 * time.Minute)},
						Drift: &Drift{Action: "update", Attributes: []string{"env.TOKEN", "args"}}},
				},
			},
			{Host: "web2", Address: "web2.example.internal", Transport: "ssh", Error: "dial tcp web2.example.internal:22: connect: connection refused", Services: []*ServiceStatus{}},
			{Host: "web3", Address: "web3.example.internal", Transport: "winrm", AgentVersion: "0.4.0",
				Services: []*ServiceStatus{
					{Address: "service.ticker", Service: "ticker", Mode: "wrapped", Deployed: true, InConfiguration: true,
						Release: &Release{ID: "r-2222000033334444aaaa", Version: "aaaaaaaaaaaa", Artifact: sha("a"), Activated: now.Add(-50 * time.Second)},
						State:   "running", PID: 77, Since: now.Add(-50 * time.Second),
						Health:   &HealthStatus{Status: Unknown, Kind: "running", Detail: "gave up waiting for the agent"},
						Restarts: n(0), Wrapper: &WrapperStatus{Starts: 1, ChildPID: 78, ChildSince: now.Add(-49 * time.Second)}},
				},
				Resources: []*ServiceStatus{
					{Address: "task.nightly", Service: "nightly", Kind: "task", Deployed: true, InConfiguration: true,
						Release: &Release{ID: "r-5555000066667777aaaa", Version: "1.0.0", Artifact: sha("c"), Activated: now.Add(-26 * time.Hour)},
						State:   "ready", Since: now.Add(-26 * time.Hour),
						Details: []Detail{{Name: "last run", Time: now.Add(-10 * time.Hour), Value: "exit code 0"}, {Name: "next run", Time: now.Add(14 * time.Hour)}}},
					{Address: "firewall.ticker", Service: "ticker", Kind: "firewall", Deployed: true, InConfiguration: true,
						Release: &Release{ID: "r-8888000099990000aaaa", Activated: now.Add(-50 * time.Second)},
						State:   "disabled", Since: now.Add(-50 * time.Second),
						Details: []Detail{{Name: "allows", Value: "tcp 8080 from any address (domain, private, public)"}},
						Drift:   &Drift{Action: "update", Attributes: []string{"enabled"}}},
				}},
		},
	}
}

func TestStatusGolden(t *testing.T) {
	st := sampleStatus()
	var human, js bytes.Buffer
	if err := StatusTable(&human, st, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.txt", human.Bytes())
	if err := StatusJSON(&js, st); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.json", js.Bytes())

	// The JSON form carries everything the table is drawn from.
	var back Status
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	StatusTable(&again, &back, false)
	if again.String() != human.String() {
		t.Errorf("status rendered from the JSON differs:\n%s", again.String())
	}
	if !strings.Contains(js.String(), `"format_version": 1`) {
		t.Errorf("the JSON lacks its format version")
	}
	// A native service's restarts are not known: null, not 0.
	var raw struct {
		Hosts []struct {
			Services []map[string]json.RawMessage `json:"services"`
		} `json:"hosts"`
	}
	json.Unmarshal(js.Bytes(), &raw)
	if got := string(raw.Hosts[0].Services[0]["restarts"]); got != "null" {
		t.Errorf("native restarts = %s, want null", got)
	}
	if got := string(raw.Hosts[0].Services[0]["drift"]); got != "null" {
		t.Errorf("a service without drift has drift %s, want null", got)
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// Colour changes nothing but the colour: without its escape codes the
// coloured table is the plain one, columns still aligned.
func TestStatusColor(t *testing.T) {
	var plain, colored bytes.Buffer
	StatusTable(&plain, sampleStatus(), false)
	StatusTable(&colored, sampleStatus(), true)
	if !ansi.MatchString(colored.String()) {
		t.Fatalf("no colour codes in the coloured table")
	}
	if ansi.MatchString(plain.String()) {
		t.Errorf("colour codes in the plain table")
	}
	if got := ansi.ReplaceAllString(colored.String(), ""); got != plain.String() {
		t.Errorf("coloured table without its codes differs from the plain one:\n%s", got)
	}
}

func TestStatusEmpty(t *testing.T) {
	var b bytes.Buffer
	StatusTable(&b, &Status{FormatVersion: StatusFormatVersion, Hosts: []*HostStatus{{Host: "web1", Address: "10.0.0.1", Transport: "winrm"}}}, false)
	want := "host.web1 (10.0.0.1, winrm)\n  no services here\n\nStatus: 0 services on 1 host: 0 running, 0 unhealthy, 0 with drift.\n"
	if b.String() != want {
		t.Errorf("got %q", b.String())
	}
}

func TestReleaseText(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for _, c := range []struct {
		r    *Release
		want string
	}{
		{nil, "-"},
		{&Release{Version: "1.2.3", Artifact: sha}, "1.2.3 (abababababab)"},
		{&Release{Version: "abababababab", Artifact: sha}, "abababababab"}, // the default label is the short hash
		{&Release{Artifact: sha}, "abababababab"},
		{&Release{Version: "1.2.3"}, "1.2.3"},
	} {
		if got := releaseText(c.r); got != c.want {
			t.Errorf("releaseText(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                   "0s", // a host clock ahead of ours
		45 * time.Second:               "45s",
		time.Minute - time.Nanosecond:  "59s",
		90 * time.Second:               "1m",
		time.Hour - time.Nanosecond:    "59m",
		3*time.Hour + 5*time.Minute:    "3h05m",
		48*time.Hour - time.Nanosecond: "47h59m",
		48 * time.Hour:                 "2d0h",
		30*24*time.Hour + 4*time.Hour:  "30d4h",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}
