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
	"github.com/gsd-deploy/gsd/agent/winsec"
	"github.com/gsd-deploy/gsd/agent/winsec/winsectest"
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
	// sec is the host's security, which the service manager consults as
	// Windows does: an account must exist to be set, a user or managed
	// account needs "Log on as a service" (and a user its password) to
	// start, and reboot actions need the caller's shutdown privilege.
	sec *winsectest.Fake
	// holder, when set, is a program holding services open: a service
	// removed meanwhile stays, marked for deletion, until release.
	holder string
}

// releaseHolder closes the holder's handles: services marked for
// deletion go.
func (f *fakeServices) releaseHolder() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holder = ""
	m := f.load()
	for n, s := range m {
		if s.Marked {
			delete(m, n)
		}
	}
	f.save(m)
}

// ServiceHandleHolders names the holder, as the Windows side names
// programs known to keep service handles open.
func (f *fakeServices) ServiceHandleHolders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder == "" {
		return nil
	}
	return []string{f.holder}
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
	// Marked is a service deleted while a program held it open.
	Marked bool `json:"marked,omitempty"`
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
	obs.MarkedForDelete = s.Marked
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
	if m[name] != nil && m[name].Marked {
		return nil, fmt.Errorf("create service: %w", errServiceMarkedForDelete)
	}
	if err := f.knows(cfg.Account.Name); err != nil {
		return nil, err
	}
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
	if m[name].Marked {
		return nil, fmt.Errorf("change service config: %w", errServiceMarkedForDelete)
	}
	if err := f.knows(cfg.Account.Name); err != nil {
		return nil, err
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
	if f.holder != "" {
		m[name].Marked = true
	} else {
		delete(m, name)
	}
	f.save(m)
	return nil
}

// knows is the service manager's check of an account it is to store.
func (f *fakeServices) knows(account string) error {
	if f.sec == nil || account == "" {
		return nil
	}
	if err := f.sec.KnowsAccount(account); err != nil {
		return fmt.Errorf("%s: %w", account, err)
	}
	return nil
}

func (f *fakeServices) SetRecovery(name string, r protocol.Recovery) (map[string]string, error) {
	if f.sec != nil && reboots(r) && !f.sec.Enabled(winsec.ShutdownPrivilege) {
		return nil, fmt.Errorf("set recovery actions: a reboot action without %s enabled: %w", winsec.ShutdownPrivilege, winsectest.ErrAccessDenied)
	}
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
		if s.Marked {
			return errServiceMarkedForDelete
		}
		if f.sec != nil {
			if err := f.sec.LogOnAsService(s.Config.Account.Name, f.passwords[name]); err != nil {
				return err
			}
		}
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
