package views

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/apply"
)

// TestRolloutReportGolden pins the report of a rollout that stopped (with
// the failing check, the service's last output and the rollback), one
// that paused after its canary, and one that completed within
// max_failures; a clean rollout prints nothing.
func TestRolloutReportGolden(t *testing.T) {
	out := apply.Outcome{
		Results: []apply.Result{{Host: "web2", Err: errors.New("host web2: service.api: http check failed")}},
		Rollouts: []apply.RolloutReport{
			{Address: "service.db", Service: "db", Batches: 3, BatchesDone: 3},
			{Address: "service.api", Service: "api", Batches: 3, BatchesDone: 2, Stopped: true,
				Failures: []apply.HostFailure{{Host: "web3", Phase: "health",
					Err:      "http check failed after 1m0s and 61 probes: HTTP 503",
					Health:   &protocol.HealthResult{Kind: "http", Last: "HTTP 503", Output: []string{"starting v2", "panic: config key \"port\" missing"}},
					Rollback: "switched back to 1.0.0 (release r-0123456789abcdef0123) and healthy", RolledBackHealthy: true}},
				AlsoRolledBack: []string{"web2: switched back to 1.0.0 and healthy"},
				Untouched:      []string{"web4", "web5"}},
			{Address: "service.web", Service: "web", Batches: 2, BatchesDone: 1, Paused: true, Untouched: []string{"web2", "web3"}},
			{Address: "service.cache", Service: "cache", Batches: 2, BatchesDone: 2,
				Failures: []apply.HostFailure{{Host: "web1", Phase: "change", Err: "start: service did not start within 30s",
					Rollback: "switched back to 2.0.0 (release r-aaaabbbbccccddddeeee) and healthy"}}},
		},
	}
	var buf bytes.Buffer
	RolloutReport(&buf, out, false)
	golden(t, "rollout-report.txt", buf.Bytes())

	buf.Reset()
	RolloutReport(&buf, apply.Outcome{Rollouts: []apply.RolloutReport{{Address: "service.db", Service: "db", Batches: 1, BatchesDone: 1}}}, false)
	if buf.Len() != 0 {
		t.Errorf("a clean rollout printed %q", buf.String())
	}
}
