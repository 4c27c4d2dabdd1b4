package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// Kind carries out the steps of one kind of resource through a host's
// agent. The engine knows kinds only through it. Services have their
// own; every other kind plan knows (see plan.Register) is carried out by
// the agent's generic release ops, so a new kind (a scheduled task, a
// firewall rule) needs a differ in plan and a handler in the agent, and
// nothing here.
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

// DefaultKinds are the kinds this gsd applies: every kind plan knows.
func DefaultKinds() map[string]Kind {
	out := map[string]Kind{}
	for _, k := range plan.Kinds() {
		out[k.Name()] = releaseKind{}
	}
	out[protocol.KindService] = serviceKind{}
	return out
}

// releaseKind applies a resource through the agent's release ops alone:
// its changes are not health-gated, and activating one stops nothing
// that runs.
type releaseKind struct{}

func (releaseKind) Stage(ctx context.Context, conn Conn, s *plan.Step, secrets map[string]string) (string, error) {
	var res protocol.StageReleaseResult
	err := conn.Call(ctx, protocol.OpStageRelease, protocol.StageReleaseArgs{Kind: s.Kind, Name: s.Service, Spec: s.Spec, Secrets: secrets}, &res)
	return res.ID, err
}

// releaseActivateTimeout bounds an activation of a resource that stops
// nothing.
const releaseActivateTimeout = 60000

func (releaseKind) Activate(ctx context.Context, conn Conn, s *plan.Step, release, effect string) error {
	args := protocol.ActivateArgs{Kind: s.Kind, Name: s.Service, Release: release, Effect: effect,
		OnInterrupt: protocol.OnFailureRollback, TimeoutMS: releaseActivateTimeout}
	return conn.Call(ctx, protocol.OpActivate, args, nil)
}

func (releaseKind) Delete(ctx context.Context, conn Conn, s *plan.Step) error {
	return conn.Call(ctx, protocol.OpDelete, protocol.DeleteArgs{Kind: s.Kind, Name: s.Service}, nil)
}

func (releaseKind) Health(context.Context, Conn, *plan.Step, protocol.HealthCheck) (protocol.HealthResult, error) {
	return protocol.HealthResult{}, errors.New("this kind of resource has no health check")
}

// serviceKind applies services through the agent's release ops, with
// their stop timeouts and health checks.
type serviceKind struct{ releaseKind }

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
