package scale

import (
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// services is an in-memory service manager with the contract the agent
// needs: it remembers what it was given and reports it back, and a start
// or stop takes effect at once. (The agent's unit-test fake lives in that
// package's tests, which this package cannot import.)
type services struct {
	mu  sync.Mutex
	all map[string]*service
}

type service struct {
	cfg      agent.InstallConfig
	state    string
	recovery *protocol.Recovery
}

var _ agent.ServiceControl = (*services)(nil)

func newServices() *services { return &services{all: map[string]*service{}} }

func (s *services) Query(name string) (agent.Observed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.all[name]
	if svc == nil {
		return agent.Observed{}, nil
	}
	start, delayed := svc.cfg.Start, false
	if start == protocol.StartDelayed {
		start, delayed = protocol.StartAuto, true
	}
	obs := agent.Observed{
		Installed: true,
		Config: protocol.SCMConfig{BinaryPath: svc.cfg.BinaryPath, Args: svc.cfg.Args, StartType: start, DelayedStart: delayed,
			Account: svc.cfg.Account.Name, Dependencies: svc.cfg.DependsOn, DisplayName: svc.cfg.DisplayName, Description: svc.cfg.Description},
		Status:   protocol.ServiceStatus{State: svc.state},
		Recovery: &protocol.Recovery{Actions: []protocol.RecoveryAction{}},
		Env:      svc.cfg.Env,
	}
	if svc.recovery != nil {
		obs.Recovery = svc.recovery
	}
	if svc.state == agent.StateRunning {
		obs.Status.PID = 4242
	}
	return obs, nil
}

func (s *services) Install(name string, cfg agent.InstallConfig) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg.Account.Password = ""
	s.all[name] = &service{cfg: cfg, state: agent.StateStopped}
	return nil, nil
}

func (s *services) Reconfigure(name string, cfg agent.InstallConfig) (map[string]string, error) {
	return nil, s.update(name, func(svc *service) { cfg.Account.Password = ""; svc.cfg = cfg })
}

func (s *services) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all[name] == nil {
		return agent.ErrServiceNotInstalled
	}
	delete(s.all, name)
	return nil
}

func (s *services) SetRecovery(name string, r protocol.Recovery) (map[string]string, error) {
	return nil, s.update(name, func(svc *service) { svc.recovery = &r })
}

func (s *services) Start(name string, _ time.Duration) error {
	return s.update(name, func(svc *service) { svc.state = agent.StateRunning })
}

func (s *services) Stop(name string, _ time.Duration) error {
	return s.update(name, func(svc *service) { svc.state = agent.StateStopped })
}

func (s *services) ActiveDependents(string) ([]string, error) { return nil, nil }

func (s *services) ParamChange(name string) error { return s.update(name, func(*service) {}) }

func (s *services) update(name string, f func(*service)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.all[name]
	if svc == nil {
		return agent.ErrServiceNotInstalled
	}
	f(svc)
	return nil
}
