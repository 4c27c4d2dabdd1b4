//go:build windows

package scm

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Control drives the local service control manager.
type Control struct {
	// onWine is set when running under Wine, whose SCM accepts a service's
	// Environment registry value but never applies it.
	onWine bool
}

// New connects lazily; every call opens and closes its own SCM handle, so
// a long-lived agent never holds a stale one.
func New() agent.ServiceControl {
	return &Control{onWine: IsWine()}
}

// IsWine reports whether this process runs under Wine, detected by the
// wine_get_version export that only Wine's ntdll has.
func IsWine() bool { return wine.Detected() }

func notReadable(err error) string {
	return "not readable on this host: " + err.Error()
}

func withService(name string, fn func(m *mgr.Mgr, s *mgr.Service) error) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return agent.ErrServiceNotInstalled
		}
		return err
	}
	defer s.Close()
	return fn(m, s)
}

// Query reads each part separately; a part the host cannot report lands in
// Unreadable.
func (c *Control) Query(name string) (agent.Observed, error) {
	var obs agent.Observed
	err := withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		obs.Installed = true
		obs.Unreadable = map[string]string{}
		qsc, err := queryConfig(s.Handle)
		if err != nil {
			return fmt.Errorf("query config: %w", err)
		}
		cmdline := windows.UTF16PtrToString(qsc.BinaryPathName)
		argv, err := windows.DecomposeCommandLine(cmdline)
		if err != nil || len(argv) == 0 {
			argv = []string{cmdline}
		}
		obs.Config = protocol.SCMConfig{
			BinaryPath:   argv[0],
			Args:         argv[1:],
			StartType:    startTypeName(qsc.StartType),
			Account:      windows.UTF16PtrToString(qsc.ServiceStartName),
			Dependencies: multiSZ(qsc.Dependencies),
			DisplayName:  windows.UTF16PtrToString(qsc.DisplayName),
		}
		if len(obs.Config.Dependencies) == 0 {
			// Wine's QueryServiceConfig returns no dependencies even though
			// it stores them; the registry value is what the SCM itself
			// reads at start, so report that.
			if deps := registryDependencies(name); len(deps) > 0 {
				obs.Config.Dependencies = deps
				obs.Sources = map[string]string{"dependencies": protocol.SourceRegistry}
			}
		}
		if b, err := queryConfig2(s.Handle, windows.SERVICE_CONFIG_DESCRIPTION); err == nil {
			obs.Config.Description = windows.UTF16PtrToString((*windows.SERVICE_DESCRIPTION)(unsafe.Pointer(&b[0])).Description)
		} else {
			obs.Unreadable["description"] = notReadable(err)
		}
		if b, err := queryConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO); err == nil {
			obs.Config.DelayedStart = (*windows.SERVICE_DELAYED_AUTO_START_INFO)(unsafe.Pointer(&b[0])).IsDelayedAutoStartUp != 0
		} else {
			obs.Unreadable["delayed_start"] = notReadable(err)
		}
		if obs.Config.StartType == protocol.StartAuto && obs.Config.DelayedStart {
			obs.Config.StartType = protocol.StartDelayed
		}
		if r, err := queryRecovery(s); err == nil {
			obs.Recovery = r
		} else {
			obs.Unreadable["recovery"] = notReadable(err)
		}
		env, err := readEnv(name)
		if err != nil {
			obs.Unreadable["env"] = notReadable(err)
		} else {
			obs.Env = env
			if c.onWine && len(env) > 0 {
				obs.Unreadable["env"] = "written to the service's Environment registry value, which Wine does not apply to the process"
			}
		}
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("query status: %w", err)
		}
		obs.Status = protocol.ServiceStatus{State: stateName(st.State), PID: st.ProcessId, ExitCode: st.Win32ExitCode}
		obs.MarkedForDelete = markedForDelete(name)
		if len(obs.Unreadable) == 0 {
			obs.Unreadable = nil
		}
		return nil
	})
	if errors.Is(err, agent.ErrServiceNotInstalled) {
		return agent.Observed{Status: protocol.ServiceStatus{State: agent.StateNotInstalled}}, nil
	}
	return obs, err
}

func queryRecovery(s *mgr.Service) (*protocol.Recovery, error) {
	acts, err := s.RecoveryActions()
	if err != nil {
		return nil, err
	}
	reset, err := s.ResetPeriod()
	if err != nil {
		return nil, err
	}
	nonCrash, err := s.RecoveryActionsOnNonCrashFailures()
	if err != nil {
		return nil, err
	}
	cmd, err := s.RecoveryCommand()
	if err != nil {
		return nil, err
	}
	msg, err := s.RebootMessage()
	if err != nil {
		return nil, err
	}
	r := &protocol.Recovery{ResetAfterMS: int64(reset) * 1000, OnNonCrash: nonCrash, Command: cmd, RebootMessage: msg, Actions: []protocol.RecoveryAction{}}
	for _, a := range acts {
		r.Actions = append(r.Actions, protocol.RecoveryAction{Type: actionName(a.Type), DelayMS: a.Delay.Milliseconds()})
	}
	return r, nil
}

func queryConfig(h windows.Handle) (*windows.QUERY_SERVICE_CONFIG, error) {
	n := uint32(1024)
	for {
		b := make([]byte, n)
		p := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(h, p, n, &n)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return nil, err
		}
	}
}

func queryConfig2(h windows.Handle, level uint32) ([]byte, error) {
	n := uint32(1024)
	for {
		b := make([]byte, n)
		err := windows.QueryServiceConfig2(h, level, &b[0], n, &n)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return nil, err
		}
	}
}

// multiSZ splits a double-NUL-terminated string list.
func multiSZ(p *uint16) []string {
	out := []string{}
	if p == nil {
		return out
	}
	for {
		n := 0
		for *(*uint16)(unsafe.Add(unsafe.Pointer(p), n*2)) != 0 {
			n++
		}
		if n == 0 {
			return out
		}
		out = append(out, windows.UTF16PtrToString(p))
		p = (*uint16)(unsafe.Add(unsafe.Pointer(p), (n+1)*2))
	}
}

// toMultiSZ builds a double-NUL-terminated list; nil for an empty one.
func toMultiSZ(ss []string) *uint16 {
	if len(ss) == 0 {
		return nil
	}
	var b []uint16
	for _, s := range ss {
		u, err := windows.UTF16FromString(s)
		if err != nil {
			continue // a NUL inside a name; validated away before here
		}
		b = append(b, u...)
	}
	b = append(b, 0)
	return &b[0]
}

func optPtr(s string) *uint16 {
	if s == "" {
		return nil
	}
	p, _ := windows.UTF16PtrFromString(s)
	return p
}

// accountName maps the names users write to what the SCM expects.
func accountName(name string) string {
	switch strings.ToLower(name) {
	case "", "localsystem", `nt authority\system`:
		return "LocalSystem"
	case "localservice", `nt authority\localservice`:
		return `NT AUTHORITY\LocalService`
	case "networkservice", `nt authority\networkservice`:
		return `NT AUTHORITY\NetworkService`
	}
	return name
}

func startType(s string) uint32 {
	switch s {
	case protocol.StartManual:
		return windows.SERVICE_DEMAND_START
	case protocol.StartDisabled:
		return windows.SERVICE_DISABLED
	}
	return windows.SERVICE_AUTO_START
}

func commandLine(cfg agent.InstallConfig) string {
	return windows.ComposeCommandLine(append([]string{cfg.BinaryPath}, cfg.Args...))
}

// Install creates the service without the delayed flag (Wine's
// CreateService path refuses it) and then sets each optional part.
func (c *Control) Install(name string, cfg agent.InstallConfig) (map[string]string, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect to service manager: %w", err)
	}
	defer m.Disconnect()
	h, err := windows.CreateService(m.Handle, optPtr(name), optPtr(cfg.DisplayName),
		windows.SERVICE_ALL_ACCESS, windows.SERVICE_WIN32_OWN_PROCESS, startType(cfg.Start),
		windows.SERVICE_ERROR_NORMAL, optPtr(commandLine(cfg)), nil, nil,
		toMultiSZ(cfg.DependsOn), optPtr(accountName(cfg.Account.Name)), optPtr(cfg.Account.Password))
	if err != nil {
		return nil, fmt.Errorf("create service: %w", err)
	}
	defer windows.CloseServiceHandle(h)
	gaps, err := c.configureExtras(h, name, cfg)
	if err != nil {
		windows.DeleteService(h)
		return nil, err
	}
	return gaps, nil
}

// Reconfigure changes every setting; an empty password leaves the stored
// one as it is.
func (c *Control) Reconfigure(name string, cfg agent.InstallConfig) (map[string]string, error) {
	var gaps map[string]string
	err := withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		deps := toMultiSZ(cfg.DependsOn)
		if deps == nil {
			empty := []uint16{0, 0}
			deps = &empty[0] // an empty list clears dependencies; nil would keep them
		}
		err := windows.ChangeServiceConfig(s.Handle, windows.SERVICE_WIN32_OWN_PROCESS, startType(cfg.Start),
			windows.SERVICE_NO_CHANGE, optPtr(commandLine(cfg)), nil, nil, deps,
			optPtr(accountName(cfg.Account.Name)), optPtr(cfg.Account.Password), optPtr(cfg.DisplayName))
		if err != nil {
			return fmt.Errorf("change service config: %w", err)
		}
		gaps, err = c.configureExtras(s.Handle, name, cfg)
		return err
	})
	return gaps, err
}

// configureExtras sets description, delayed start and environment. Delayed
// start is the one Wine cannot take: if writing or reading it back fails
// with ERROR_INVALID_LEVEL it is reported as a gap, not an error.
func (c *Control) configureExtras(h windows.Handle, name string, cfg agent.InstallConfig) (map[string]string, error) {
	gaps := map[string]string{}
	// A pointer to an empty string clears the description; nil would keep
	// the old one.
	desc, err := windows.UTF16PtrFromString(cfg.Description)
	if err != nil {
		return nil, err
	}
	d := windows.SERVICE_DESCRIPTION{Description: desc}
	if err := windows.ChangeServiceConfig2(h, windows.SERVICE_CONFIG_DESCRIPTION, (*byte)(unsafe.Pointer(&d))); err != nil {
		return nil, fmt.Errorf("set description: %w", err)
	}
	var delayed windows.SERVICE_DELAYED_AUTO_START_INFO
	if cfg.Start == protocol.StartDelayed {
		delayed.IsDelayedAutoStartUp = 1
	}
	if err := windows.ChangeServiceConfig2(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed))); err != nil {
		if !errors.Is(err, windows.ERROR_INVALID_LEVEL) {
			return nil, fmt.Errorf("set delayed start: %w", err)
		}
		// Clearing a flag the host does not support is no loss; only a
		// wanted delayed start is a gap worth recording.
		if cfg.Start == protocol.StartDelayed {
			gaps["delayed_start"] = "not accepted by this host: " + err.Error()
		}
	} else if _, err := queryConfig2(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO); err != nil {
		gaps["delayed_start"] = notReadable(err)
	}
	if err := writeEnv(name, cfg.Env); err != nil {
		return nil, fmt.Errorf("set environment: %w", err)
	}
	if c.onWine && len(cfg.Env) > 0 {
		gaps["env"] = "written to the service's Environment registry value, which Wine does not apply to the process"
	}
	if len(gaps) == 0 {
		return nil, nil
	}
	return gaps, nil
}

func serviceKey(name string) string { return `SYSTEM\CurrentControlSet\Services\` + name }

func writeEnv(name string, env map[string]string) error {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey(name), registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	if len(env) == 0 {
		err := k.DeleteValue("Environment")
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			return nil
		}
		return err
	}
	keys := make([]string, 0, len(env))
	for key := range env {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	vals := make([]string, 0, len(env))
	for _, key := range keys {
		vals = append(vals, key+"="+env[key])
	}
	return k.SetStringsValue("Environment", vals)
}

// registryDependencies reads DependOnService and DependOnGroup; groups are
// written with the SCM's "+" prefix.
func registryDependencies(name string) []string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey(name), registry.QUERY_VALUE)
	if err != nil {
		return nil
	}
	defer k.Close()
	deps, _, _ := k.GetStringsValue("DependOnService")
	groups, _, _ := k.GetStringsValue("DependOnGroup")
	for _, g := range groups {
		deps = append(deps, "+"+g)
	}
	return deps
}

// markedForDelete reads the DeleteFlag value Windows sets on a service
// deleted while programs still hold it open. (Wine keeps such a service
// too, but sets no flag; the agent remembers what it deleted.)
func markedForDelete(name string) bool {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey(name), registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	defer k.Close()
	v, _, err := k.GetIntegerValue("DeleteFlag")
	return err == nil && v != 0
}

// handleHolders are programs known to keep service handles open while
// they run.
var handleHolders = map[string]bool{"mmc.exe": true, "taskmgr.exe": true, "procexp.exe": true, "procexp64.exe": true, "perfmon.exe": true, "resmon.exe": true, "servicesmanager.exe": true}

// ServiceHandleHolders lists the running programs known to keep service
// handles open (the Services console is mmc.exe), with their ids.
func (c *Control) ServiceHandleHolders() []string {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	var out []string
	for err := windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		exe := windows.UTF16ToString(e.ExeFile[:])
		if handleHolders[strings.ToLower(exe)] {
			out = append(out, fmt.Sprintf("%s (pid %d)", exe, e.ProcessID))
		}
	}
	return out
}

func readEnv(name string) (map[string]string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey(name), registry.QUERY_VALUE)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	vals, _, err := k.GetStringsValue("Environment")
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, v := range vals {
		if k, val, ok := strings.Cut(v, "="); ok {
			env[k] = val
		}
	}
	return env, nil
}

// Remove marks the service for deletion; the SCM finishes once the last
// handle to it is closed.
func (c *Control) Remove(name string) error {
	return withService(name, func(_ *mgr.Mgr, s *mgr.Service) error { return s.Delete() })
}

// SetRecovery writes failure actions, reset period and the non-crash flag.
// Wine stores them but cannot report them back; that is reported as a gap.
func (c *Control) SetRecovery(name string, r protocol.Recovery) (map[string]string, error) {
	var gaps map[string]string
	err := withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		acts := make([]mgr.RecoveryAction, 0, len(r.Actions))
		for _, a := range r.Actions {
			acts = append(acts, mgr.RecoveryAction{Type: actionType(a.Type), Delay: time.Duration(a.DelayMS) * time.Millisecond})
		}
		var err error
		if len(acts) == 0 {
			err = s.ResetRecoveryActions()
		} else {
			err = s.SetRecoveryActions(acts, uint32(r.ResetAfterMS/1000))
		}
		if err != nil && !errors.Is(err, windows.ERROR_INVALID_LEVEL) {
			return fmt.Errorf("set recovery actions: %w", err)
		}
		if err == nil || errors.Is(err, windows.ERROR_INVALID_LEVEL) {
			// The program a "run" action starts, and what a "reboot"
			// action broadcasts first; empty clears each.
			if cerr := s.SetRecoveryCommand(r.Command); cerr != nil && !errors.Is(cerr, windows.ERROR_INVALID_LEVEL) {
				return fmt.Errorf("set recovery command: %w", cerr)
			} else if err == nil {
				err = cerr
			}
			if merr := s.SetRebootMessage(r.RebootMessage); merr != nil && !errors.Is(merr, windows.ERROR_INVALID_LEVEL) {
				return fmt.Errorf("set reboot message: %w", merr)
			} else if err == nil {
				err = merr
			}
		}
		if err2 := s.SetRecoveryActionsOnNonCrashFailures(r.OnNonCrash); err2 != nil && !errors.Is(err2, windows.ERROR_INVALID_LEVEL) {
			return fmt.Errorf("set recovery on non-crash failures: %w", err2)
		} else if err == nil {
			err = err2
		}
		if err != nil {
			gaps = map[string]string{"recovery": "not accepted by this host: " + err.Error()}
			return nil
		}
		if _, err := queryRecovery(s); err != nil {
			gaps = map[string]string{"recovery": notReadable(err)}
		}
		return nil
	})
	return gaps, err
}

// Start asks the SCM to start the service and waits until it runs. A
// service that stops again while starting is reported with its exit code.
func (c *Control) Start(name string, timeout time.Duration) error {
	return withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		if err := s.Start(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
			return fmt.Errorf("start: %w", err)
		}
		return waitFor(s, svc.Running, timeout)
	})
}

// Stop asks the service to stop and waits up to timeout. A request the
// service manager refuses while the service is between states is sent
// again (see requestStop).
func (c *Control) Stop(name string, timeout time.Duration) error {
	return withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		deadline := time.Now().Add(timeout)
		send := func() error { _, err := s.Control(svc.Stop); return err }
		query := func() (uint32, error) {
			st, err := s.Query()
			return uint32(st.State), err
		}
		if err := requestStop(send, query, deadline, time.Sleep); err != nil {
			return err
		}
		return waitFor(s, svc.Stopped, max(time.Until(deadline), 0))
	})
}

// ActiveDependents asks the SCM which services depend on name and are
// active; EnumDependentServices lists indirect dependents too, in reverse
// start order, which is the order to stop them in. Wine's is a stub that
// reports none, so there the dependency graph is read from the registry,
// where Wine's SCM keeps it.
func (c *Control) ActiveDependents(name string) ([]string, error) {
	if c.onWine {
		return c.registryActiveDependents(name)
	}
	var deps []string
	err := withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		var err error
		deps, err = s.ListDependentServices(svc.Active)
		return err
	})
	return deps, err
}

func (c *Control) registryActiveDependents(name string) ([]string, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect to service manager: %w", err)
	}
	defer m.Disconnect()
	names, err := m.ListServices()
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	graph := make(map[string][]string, len(names))
	for _, n := range names {
		graph[n] = registryDependencies(n)
	}
	var active []string
	for _, d := range stopOrder(name, graph) {
		s, err := m.OpenService(d)
		if err != nil {
			continue // deleted meanwhile
		}
		st, err := s.Query()
		s.Close()
		if err == nil && st.State != svc.Stopped {
			active = append(active, d)
		}
	}
	return active, nil
}

// ParamChange tells the service its parameters changed, the Windows way of
// asking for a reload.
func (c *Control) ParamChange(name string) error {
	return withService(name, func(_ *mgr.Mgr, s *mgr.Service) error {
		_, err := s.Control(svc.ParamChange)
		return err
	})
}

func waitFor(s *mgr.Service, want svc.State, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.Query()
		if err != nil {
			return err
		}
		if st.State == want {
			return nil
		}
		if want == svc.Running && st.State == svc.Stopped {
			// The exit code is a Windows error (1069, 1053...), kept so
			// the agent can explain it.
			return fmt.Errorf("service stopped while starting (exit code %d, service exit code %d): %w", st.Win32ExitCode, st.ServiceSpecificExitCode, syscall.Errno(st.Win32ExitCode))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s after %s, wanted %s", stateName(st.State), timeout, stateName(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return agent.StateStopped
	case svc.StartPending:
		return agent.StateStartPending
	case svc.StopPending:
		return agent.StateStopPending
	case svc.Running:
		return agent.StateRunning
	case svc.ContinuePending:
		return agent.StateContinuing
	case svc.PausePending:
		return agent.StatePausePending
	case svc.Paused:
		return agent.StatePaused
	}
	return fmt.Sprintf("unknown(%d)", s)
}

func startTypeName(t uint32) string {
	switch t {
	case windows.SERVICE_AUTO_START:
		return protocol.StartAuto
	case windows.SERVICE_DEMAND_START:
		return protocol.StartManual
	case windows.SERVICE_DISABLED:
		return protocol.StartDisabled
	case windows.SERVICE_BOOT_START:
		return "boot"
	case windows.SERVICE_SYSTEM_START:
		return "system"
	}
	return fmt.Sprintf("unknown(%d)", t)
}

func actionType(s string) int {
	switch s {
	case "restart":
		return windows.SC_ACTION_RESTART
	case "reboot":
		return windows.SC_ACTION_REBOOT
	case "run":
		return windows.SC_ACTION_RUN_COMMAND
	}
	return windows.SC_ACTION_NONE
}

func actionName(t int) string {
	switch t {
	case windows.SC_ACTION_RESTART:
		return "restart"
	case windows.SC_ACTION_REBOOT:
		return "reboot"
	case windows.SC_ACTION_RUN_COMMAND:
		return "run"
	}
	return "none"
}
