package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

const userService = `
variable "svc_pw" {
  type      = string
  sensitive = true
  default   = "Svc-Pa55-rotated"
}
service "api" {
  hosts  = ["web1"]
  binary = build.api
  account {
    name     = "CORP\\svc-api"
    password = var.svc_pw
  }
}
`

// A password changed only in the configuration is found by comparing its
// salted hash with the one the host keeps, and shown as sensitive on both
// sides: neither the password nor any hash of it reaches the plan.
func TestAccountPasswordChangeIsPlanned(t *testing.T) {
	cfg := loadConfig(t, base+userService)
	const salt = "0123456789abcdef0123456789abcdef"
	oldHash := &protocol.PasswordHash{Salt: salt, SHA256: protocol.HashPassword(salt, "Svc-Pa55-before")}
	cases := []struct {
		name string
		have *protocol.PasswordHash
		old  *string
	}{
		{"host keeps the hash of another password", oldHash, ptr(sensitiveValue)},
		{"host keeps no hash", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			facts := converged(cfg, "web1")
			facts.Services[0].Password = tc.have
			p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: facts}})
			s := step(t, p, "web1", "api")
			if s.Action != ActionUpdate || len(s.Changes) != 1 || s.Restart || s.Start {
				t.Fatalf("got %s %+v restart=%v start=%v, want one in-place change", s.Action, s.Changes, s.Restart, s.Start)
			}
			c := s.Changes[0]
			if c.Attribute != "account.password" || !c.Sensitive || c.New == nil || *c.New != sensitiveValue || (c.Old == nil) != (tc.old == nil) || (c.Old != nil && *c.Old != *tc.old) {
				t.Fatalf("change %+v", c)
			}
			if p.Summary.Change != 1 {
				t.Errorf("summary %+v", p.Summary)
			}
			b, _ := json.Marshal(p)
			plain := sha256.Sum256([]byte("Svc-Pa55-rotated"))
			for _, leak := range []string{"Svc-Pa55", oldHash.SHA256, salt, hex.EncodeToString(plain[:]), protocol.HashPassword(salt, "Svc-Pa55-rotated")} {
				if strings.Contains(string(b), leak) {
					t.Errorf("the plan holds %q: %s", leak, b)
				}
			}
		})
	}
	// The same password under its host's salt is no change.
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: converged(cfg, "web1")}})
	if s := step(t, p, "web1", "api"); s.Action != ActionNoOp {
		t.Errorf("unchanged password: %s %v", s.Action, changed(s))
	}
}

func TestCreationShowsPasswordAsSensitive(t *testing.T) {
	cfg := loadConfig(t, base+userService)
	p := mustMake(t, cfg, map[string]HostFacts{"web1": {Facts: &protocol.Facts{}}})
	var found bool
	for _, c := range step(t, p, "web1", "api").Changes {
		if c.Attribute == "account.password" {
			found = c.Sensitive && c.New != nil && *c.New == sensitiveValue
		}
	}
	if !found {
		t.Errorf("creation does not list the password as sensitive: %+v", step(t, p, "web1", "api").Changes)
	}
}

// Removing a recovery block plans clearing the actions the host has; what
// it shows is what is removed.
func TestRemovedRecoveryBlockClearsActions(t *testing.T) {
	withRecovery := base + `
service "api" {
  hosts  = ["web1"]
  binary = build.api
  recovery {
    actions     = ["restart/5s", "none"]
    reset_after = "1h"
  }
}
`
	before := loadConfig(t, withRecovery)
	facts := converged(before, "web1")
	if p := mustMake(t, before, map[string]HostFacts{"web1": {Facts: facts}}); step(t, p, "web1", "api").Action != ActionNoOp {
		t.Fatalf("the block as applied is no change")
	}
	after := loadConfig(t, base+`
service "api" {
  hosts  = ["web1"]
  binary = build.api
}
`)
	p := mustMake(t, after, map[string]HostFacts{"web1": {Facts: facts}})
	s := step(t, p, "web1", "api")
	if s.Action != ActionUpdate || len(s.Changes) != 1 || s.Restart {
		t.Fatalf("got %s %+v restart=%v", s.Action, s.Changes, s.Restart)
	}
	c := s.Changes[0]
	if c.Attribute != "recovery" || c.New != nil || c.Old == nil || *c.Old != "restart/5s,none reset_after=1h on_non_crash=false" {
		t.Errorf("change %+v", c)
	}
}
