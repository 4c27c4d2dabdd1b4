package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// fakeServices is a service manager kept in a JSON file, so an agent
// process that is killed and the one that follows see the same services.
// With hang set, a service named "hang" never finishes starting and one
// named "hangstop" never returns from a stop (after stopping), which lets
// tests kill an agent in the middle of an apply.
type fakeServices struct {
	mu   sync.Mutex
	path string
	// gaps are reported for every Install/Reconfigure/SetRecovery, the way
	// Wine reports settings it cannot honour.
	gaps map[string]string
	// hang makes Start of the service "hang" block forever.
	hang bool
}

type fakeService struct {
	Config   InstallConfig      `json:"config"`
	State    string             `json:"state"`
	Recovery *protocol.Recovery `json:"recovery,omitempty"`
	Reloads  int                `json:"reloads"`
}

func newFakeServices(dir string) *fakeServices {
	return &fakeServices{path: filepath.Join(dir, "fake-scm.json")}
}

func (f *fakeServices) load() map[string]*fakeService {
	m := map[string]*fakeService{}
	if b, err := os.ReadFile(f.path); err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func (f *fakeServices) save(m map[string]*fakeService) {
	b, _ := json.Marshal(m)
	os.WriteFile(f.path, b, 0o644)
}

func (f *fakeServices) Query(name string) (Observed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.load()[name]
	if s == nil {
		return Observed{}, nil
	}
	obs := Observed{
		Installed: true,
		Config: protocol.SCMConfig{
			BinaryPath: s.Config.BinaryPath, Args: s.Config.Args, StartType: s.Config.Start,
			Account: s.Config.Account.Name, Dependencies: s.Config.DependsOn,
			DisplayName: s.Config.DisplayName, Description: s.Config.Description,
		},
		Status:   protocol.ServiceStatus{State: s.State},
		Recovery: s.Recovery,
		Env:      s.Config.Env,
	}
	if s.State == StateRunning {
		obs.Status.PID = 4242
	}
	for k, v := range f.gaps {
		if obs.Unreadable == nil {
			obs.Unreadable = map[string]string{}
		}
		obs.Unreadable[k] = v
		if k == "recovery" {
			obs.Recovery = nil
		}
	}
	return obs, nil
}

func (f *fakeServices) Install(name string, cfg InstallConfig) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.load()
	cfg.Account.Password = "" // a real SCM never gives it back either
	m[name] = &fakeService{Config: cfg, State: StateStopped}
	f.save(m)
	return f.gaps, nil
}

func (f *fakeServices) Reconfigure(name string, cfg InstallConfig) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.load()
	if m[name] == nil {
		return nil, ErrServiceNotInstalled
	}
	cfg.Account.Password = ""
	if cfg.KeepEnv {
		cfg.Env, cfg.KeepEnv = m[name].Config.Env, false
	}
	m[name].Config = cfg
	f.save(m)
	return f.gaps, nil
}

func (f *fakeServices) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.load()
	if m[name] == nil {
		return ErrServiceNotInstalled
	}
	delete(m, name)
	f.save(m)
	return nil
}

func (f *fakeServices) SetRecovery(name string, r protocol.Recovery) (map[string]string, error) {
	return f.update(name, func(s *fakeService) error { s.Recovery = &r; return nil })
}

func (f *fakeServices) Start(name string, _ time.Duration) error {
	if f.hang && name == "hang" {
		select {} // the test kills the process here
	}
	_, err := f.update(name, func(s *fakeService) error { s.State = StateRunning; return nil })
	return err
}

func (f *fakeServices) Stop(name string, _ time.Duration) error {
	_, err := f.update(name, func(s *fakeService) error { s.State = StateStopped; return nil })
	if f.hang && name == "hangstop" {
		select {} // stopped, then killed before anything else happens
	}
	return err
}

func (f *fakeServices) ParamChange(name string) error {
	_, err := f.update(name, func(s *fakeService) error { s.Reloads++; return nil })
	return err
}

func (f *fakeServices) update(name string, fn func(*fakeService) error) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.load()
	if m[name] == nil {
		return nil, ErrServiceNotInstalled
	}
	if err := fn(m[name]); err != nil {
		return nil, err
	}
	f.save(m)
	return f.gaps, nil
}
