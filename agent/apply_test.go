package agent

import (
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

func TestJournaledStepsCarryNoPasswords(t *testing.T) {
	spec := nativeSpec("api", strings.Repeat("a", 64), "1")
	spec.Account = protocol.Account{Name: `CORP\svc`, Password: "hunter2-secret"}
	steps := redactSteps([]protocol.Request{
		{Op: protocol.OpEnsureService, Args: protocol.MustArgs(spec)},
		writeStep("a.txt", "A"),
	})
	for _, s := range steps {
		if strings.Contains(string(s.Args), "hunter2-secret") {
			t.Fatalf("password kept in journaled step %s", s.Args)
		}
	}
	if !strings.Contains(string(steps[0].Args), `CORP\\svc`) {
		t.Fatalf("account name lost: %s", steps[0].Args)
	}
}
