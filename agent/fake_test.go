package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// fakeServices is a service manager kept in a JSON file, so an agent
// process that is killed and the one that follows see the same services.
// With hang set, a service named "hang" never finishes starting and one
// named "hangstop" never returns from a stop (after stopping), which lets
// tests kill an agent in the middle of an apply.
//
// Like Windows, it refuses to stop a service while services that depend on
// it are active (Wine does not enforce this, so only this fake catches an
// agent that forgets).
type fakeServices struct {
	mu   sync.Mutex
	path string
	// gaps are reported for every Install/Reconfigure/SetRecovery, the way
	// Wine reports settings it cannot honour.
	gaps map[string]string
	// hang makes Start of the service "hang" block forever.
	hang bool
	// calls records every Start and Stop that changed a service, as
	// "start NAME" or "stop NAME", in order.
	calls []string
	// failStart makes the next Start of the named service fail, as a
	// release whose program does not start; the start after it (the
	// return to the release before) succeeds. With failStartAlways every
	// Start of it fails.
	failStart       string
	failStartAlways bool
	// passwords holds the last non-empty password each service was given,
	// in memory only: the file stands for what the SCM reports, and it
	// never reports a password.
	passwords map[string]string
}

func (f *fakeServices) keepPassword(name, pw string) {
	if pw == "" {
		return // the SCM keeps the one it has
	}
	if f.passwords == nil {
		f.passwords = map[string]string{}
	}
	f.passwords[name] = pw
}

// errDependentServicesRunning is what Windows answers (as
// ERROR_DEPENDENT_SERVICES_RUNNING) to a stop of a service whose
// dependents still run.
var errDependentServicesRunning = errors.New("a stop control has been sent to a service that other running services are dependent on")

type fakeService struct {
	Config   InstallConfig      `json:"config"`
	State    string             `json:"state"`
	Recovery *protocol.Recovery `json:"recovery,omitempty"`
	Reloads  int                `json:"reloads"`
}

func newFakeServices(dir string) *fakeServices {
	return &fakeServices{path: filepath.Join(dir, "fake-scm.json")}
}

// load and save replace the file atomically: a test polls it while a
// helper agent process writes it, and must never read half a file.
func (f *fakeServices) load() map[string]*fakeService {
	m := map[string]*fakeService{}
	if b, err := atomicfile.ReadFile(f.path); err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func (f *fakeServices) save(m map[string]*fakeService) {
	b, _ := json.Marshal(m)
	atomicfile.WriteFile(f.path, b)
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
	if obs.Recovery == nil {
		// A real SCM reports an empty policy, not none.
		obs.Recovery = &protocol.Recovery{Actions: []protocol.RecoveryAction{}}
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
	f.keepPassword(name, cfg.Account.Password)
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
	f.keepPassword(name, cfg.Account.Password)
	cfg.Account.Password = ""
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
	if f.hang && (name == "hang" || f.hasArg(name, "-hang-on-start")) {
		select {} // the test kills the process here
	}
	if name == f.failStart {
		if !f.failStartAlways {
			f.failStart = ""
		}
		return errors.New("the service did not start")
	}
	_, err := f.update(name, func(s *fakeService) error {
		if s.State != StateRunning {
			f.calls = append(f.calls, "start "+name)
		}
		s.State = StateRunning
		return nil
	})
	return err
}

func (f *fakeServices) Stop(name string, _ time.Duration) error {
	f.mu.Lock()
	for _, d := range dependentsOf(f.load(), name) {
		if d.svc.State != StateStopped {
			f.mu.Unlock()
			return fmt.Errorf("stop %s: %s is running: %w", name, d.name, errDependentServicesRunning)
		}
	}
	f.mu.Unlock()
	_, err := f.update(name, func(s *fakeService) error {
		if s.State != StateStopped {
			f.calls = append(f.calls, "stop "+name)
		}
		s.State = StateStopped
		return nil
	})
	if f.hang && name == "hangstop" {
		select {} // stopped, then killed before anything else happens
	}
	return err
}

type namedService struct {
	name string
	svc  *fakeService
}

// dependentsOf lists the services that depend on name directly, sorted.
func dependentsOf(m map[string]*fakeService, name string) []namedService {
	var out []namedService
	for n, s := range m {
		if slices.ContainsFunc(s.Config.DependsOn, func(d string) bool { return strings.EqualFold(d, name) }) {
			out = append(out, namedService{n, s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// ActiveDependents walks the dependency graph as EnumDependentServices
// does: every direct and indirect dependent that is not stopped, each
// before what it depends on.
func (f *fakeServices) ActiveDependents(name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.load()
	if m[name] == nil {
		return nil, ErrServiceNotInstalled
	}
	seen := map[string]bool{name: true}
	var order []string
	var visit func(n string, s *fakeService)
	visit = func(n string, s *fakeService) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range dependentsOf(m, n) {
			visit(d.name, d.svc)
		}
		if s.State != StateStopped {
			order = append(order, n)
		}
	}
	for _, d := range dependentsOf(m, name) {
		visit(d.name, d.svc)
	}
	return order, nil
}

// hasArg reports whether the service's command line has arg.
func (f *fakeServices) hasArg(name, arg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc := f.load()[name]
	return svc != nil && slices.Contains(svc.Config.Args, arg)
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
