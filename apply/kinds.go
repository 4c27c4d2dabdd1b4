package apply

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// Kind carries out the steps of one kind of resource through a host's
// agent. The engine knows kinds only through it: a new kind (a scheduled
// task, a firewall rule) is a Kind here, a differ in plan and a handler
// in the agent.
type Kind interface {
	// Stage stores the step's release, secrets filled in, on the host
	// without touching what runs, and returns its id.
	Stage(ctx context.Context, conn Conn, s *plan.Step, secrets map[string]string) (string, error)
	// Activate switches the resource to a staged release in one journaled
	// agent call.
	Activate(ctx context.Context, conn Conn, s *plan.Step, release, effect string) error
	// Delete removes the resource and what gsd kept of it.
	Delete(ctx context.Context, conn Conn, s *plan.Step) error
	// Health runs a check of the resource on the host.
	Health(ctx context.Context, conn Conn, s *plan.Step, check protocol.HealthCheck) (protocol.HealthResult, error)
}

// DefaultKinds are the kinds this gsd applies.
func DefaultKinds() map[string]Kind {
	return map[string]Kind{protocol.KindService: serviceKind{}}
}

// serviceKind applies services through the agent's release ops.
type serviceKind struct{}

func (serviceKind) Stage(ctx context.Context, conn Conn, s *plan.Step, secrets map[string]string) (string, error) {
	var res protocol.StageReleaseResult
	err := conn.Call(ctx, protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: s.Kind, Name: s.Service, Spec: s.Spec, Secrets: secrets}, &res)
	return res.ID, err
}

// activateSlack is added to a service's stop timeout for the activation's
// own bound: the agent waits for the stop and then for the start.
const activateSlack = 30000

func (serviceKind) Activate(ctx context.Context, conn Conn, s *plan.Step, release, effect string) error {
	var spec struct {
		StopTimeout int64 `json:"stop_timeout_ms"`
	}
	if len(s.Spec) > 0 {
		if err := json.Unmarshal(s.Spec, &spec); err != nil {
			return fmt.Errorf("the plan's release of %s is unreadable: %w", s.Address, err)
		}
	}
	args := protocol.ActivateArgs{Kind: s.Kind, Name: s.Service, Release: release, Effect: effect,
		OnInterrupt: protocol.OnFailureRollback, TimeoutMS: max(spec.StopTimeout, 1000) + activateSlack}
	return conn.Call(ctx, protocol.OpActivate, args, nil)
}

func (serviceKind) Delete(ctx context.Context, conn Conn, s *plan.Step) error {
	return conn.Call(ctx, protocol.OpDeleteService, protocol.ServiceRef{Service: s.Service, Purge: true}, nil)
}

func (serviceKind) Health(ctx context.Context, conn Conn, s *plan.Step, check protocol.HealthCheck) (protocol.HealthResult, error) {
	var res protocol.HealthResult
	err := conn.Call(ctx, protocol.OpHealth, protocol.HealthArgs{Service: s.Service, Check: check}, &res)
	return res, err
}
