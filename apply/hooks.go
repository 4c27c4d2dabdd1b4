package apply

import (
	"sync"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/plan"
)

// Hooks is how a run reports progress, as Terraform's terraform.Hook: the
// engine calls them and never prints. Calls are serialised; a hook must
// not block for long. Embed NilHooks to implement only some.
type Hooks interface {
	// HostStart: the run connects to a host with work.
	HostStart(host string)
	// Uploading and Uploaded bracket one artifact's upload.
	Uploading(host string, u plan.Upload)
	// UploadProgress: sent bytes of the artifact have been read for the
	// host so far (an upload that is retried starts again from 0).
	UploadProgress(host string, u plan.Upload, sent int64)
	Uploaded(host string, u plan.Upload)
	// Staged: a step's release is on the host, before anything stops.
	Staged(host string, s *plan.Step, release string)
	// Message is what a host's agent said while working.
	Message(host, message string)
	// Batch: batch n (1-based) of a rollout starts.
	Batch(r *plan.Rollout, n int, hosts []string)
	// StepStart, StepDone and StepFailed bracket a step's activation.
	StepStart(host string, s *plan.Step)
	StepDone(host string, s *plan.Step)
	StepFailed(host string, s *plan.Step, err error)
	// Health, Healthy and Unhealthy bracket a health gate.
	Health(host string, s *plan.Step)
	Healthy(host string, s *plan.Step, res *protocol.HealthResult)
	Unhealthy(host string, s *plan.Step, res *protocol.HealthResult, err error)
	// RollingBack and RolledBack bracket a host's rollback.
	RollingBack(host string, s *plan.Step)
	RolledBack(host string, s *plan.Step, err error)
	// Paused: a canary passed and the rollout waits for -continue.
	Paused(r *plan.Rollout, hosts []string)
	// HostDone: the run is done with a host; err is its failure, if any.
	HostDone(host string, err error)
}

// NilHooks does nothing; embed it in a Hooks that needs only some calls.
type NilHooks struct{}

var _ Hooks = NilHooks{}

func (NilHooks) HostStart(string)                                            {}
func (NilHooks) Uploading(string, plan.Upload)                               {}
func (NilHooks) UploadProgress(string, plan.Upload, int64)                   {}
func (NilHooks) Uploaded(string, plan.Upload)                                {}
func (NilHooks) Staged(string, *plan.Step, string)                           {}
func (NilHooks) Message(string, string)                                      {}
func (NilHooks) Batch(*plan.Rollout, int, []string)                          {}
func (NilHooks) StepStart(string, *plan.Step)                                {}
func (NilHooks) StepDone(string, *plan.Step)                                 {}
func (NilHooks) StepFailed(string, *plan.Step, error)                        {}
func (NilHooks) Health(string, *plan.Step)                                   {}
func (NilHooks) Healthy(string, *plan.Step, *protocol.HealthResult)          {}
func (NilHooks) Unhealthy(string, *plan.Step, *protocol.HealthResult, error) {}
func (NilHooks) RollingBack(string, *plan.Step)                              {}
func (NilHooks) RolledBack(string, *plan.Step, error)                        {}
func (NilHooks) Paused(*plan.Rollout, []string)                              {}
func (NilHooks) HostDone(string, error)                                      {}

// serialHooks calls the hooks one at a time, as Hooks promises.
type serialHooks struct {
	mu sync.Mutex
	h  Hooks
}

func (s *serialHooks) do(f func(Hooks)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.h)
}

func (s *serialHooks) HostStart(host string) { s.do(func(h Hooks) { h.HostStart(host) }) }
func (s *serialHooks) Uploading(host string, u plan.Upload) {
	s.do(func(h Hooks) { h.Uploading(host, u) })
}
func (s *serialHooks) UploadProgress(host string, u plan.Upload, sent int64) {
	s.do(func(h Hooks) { h.UploadProgress(host, u, sent) })
}
func (s *serialHooks) Uploaded(host string, u plan.Upload) {
	s.do(func(h Hooks) { h.Uploaded(host, u) })
}
func (s *serialHooks) Staged(host string, st *plan.Step, release string) {
	s.do(func(h Hooks) { h.Staged(host, st, release) })
}
func (s *serialHooks) Message(host, message string) { s.do(func(h Hooks) { h.Message(host, message) }) }
func (s *serialHooks) Batch(r *plan.Rollout, n int, hosts []string) {
	s.do(func(h Hooks) { h.Batch(r, n, hosts) })
}
func (s *serialHooks) StepStart(host string, st *plan.Step) {
	s.do(func(h Hooks) { h.StepStart(host, st) })
}
func (s *serialHooks) StepDone(host string, st *plan.Step) {
	s.do(func(h Hooks) { h.StepDone(host, st) })
}
func (s *serialHooks) StepFailed(host string, st *plan.Step, err error) {
	s.do(func(h Hooks) { h.StepFailed(host, st, err) })
}
func (s *serialHooks) Health(host string, st *plan.Step) { s.do(func(h Hooks) { h.Health(host, st) }) }
func (s *serialHooks) Healthy(host string, st *plan.Step, res *protocol.HealthResult) {
	s.do(func(h Hooks) { h.Healthy(host, st, res) })
}
func (s *serialHooks) Unhealthy(host string, st *plan.Step, res *protocol.HealthResult, err error) {
	s.do(func(h Hooks) { h.Unhealthy(host, st, res, err) })
}
func (s *serialHooks) RollingBack(host string, st *plan.Step) {
	s.do(func(h Hooks) { h.RollingBack(host, st) })
}
func (s *serialHooks) RolledBack(host string, st *plan.Step, err error) {
	s.do(func(h Hooks) { h.RolledBack(host, st, err) })
}
func (s *serialHooks) Paused(r *plan.Rollout, hosts []string) {
	s.do(func(h Hooks) { h.Paused(r, hosts) })
}
func (s *serialHooks) HostDone(host string, err error) { s.do(func(h Hooks) { h.HostDone(host, err) }) }
