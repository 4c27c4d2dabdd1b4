package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/gsd-deploy/gsd/agent/state"
)

// isUp reports whether a service in state s runs or is on its way there:
// the dependents that must run again after a stop.
func isUp(s string) bool {
	return s == StateRunning || s == StateStartPending || s == StateContinuing
}

// stopService stops name the way Windows allows: the services that depend
// on it and are active are stopped first, each before what it depends on.
// Those that ran are recorded in st, and saved, before anything stops, so
// that startDependents (after the next start of name, possibly by another
// agent process if this one dies) brings exactly them back.
func (a *Agent) stopService(st *state.State, name string, timeout time.Duration, emit progressFunc) error {
	deps, err := a.opts.Services.ActiveDependents(name)
	if err != nil {
		return fmt.Errorf("service %s: list dependent services: %w", name, err)
	}
	var stop, running []string
	for _, d := range deps {
		obs, err := a.opts.Services.Query(d)
		if err != nil {
			return fmt.Errorf("service %s: query dependent service %s: %w", name, d, err)
		}
		if !obs.Installed || obs.Status.State == StateStopped {
			continue
		}
		stop = append(stop, d)
		if isUp(obs.Status.State) {
			running = append(running, d)
		}
	}
	if st.RecordStoppedDependents(name, running) {
		if err := st.Save(a.layout); err != nil {
			return err
		}
	}
	for _, d := range stop {
		emit(fmt.Sprintf("stopping %s first: it depends on %s", d, name), nil)
		if err := a.opts.Services.Stop(d, a.stopTimeout(st.Services[d], 0)); err != nil {
			return a.undoDependentStop(st, name, fmt.Errorf("service %s: stop dependent service %s: %w", name, d, err), emit)
		}
	}
	if err := a.opts.Services.Stop(name, timeout); err != nil {
		return a.undoDependentStop(st, name, err, emit)
	}
	return nil
}

// undoDependentStop starts the dependents stopped so far again when name
// itself could not be stopped: it still runs, so they can too.
func (a *Agent) undoDependentStop(st *state.State, name string, cause error, emit progressFunc) error {
	if len(st.StoppedDependentsOf(name)) == 0 {
		return cause
	}
	if obs, err := a.opts.Services.Query(name); err != nil || !isUp(obs.Status.State) {
		return cause // the next start of name restores them
	}
	if err := a.startDependents(st, name, emit); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// startDependents starts the dependents recorded as stopped with name, in
// reverse order of their stop, and forgets them. One that fails to start
// is reported, and forgotten too: retrying on every later start of name
// would fail every later apply for a service gsd may not even manage.
func (a *Agent) startDependents(st *state.State, name string, emit progressFunc) error {
	deps := st.StoppedDependentsOf(name)
	if len(deps) == 0 {
		return nil
	}
	var errs []error
	for i := len(deps) - 1; i >= 0; i-- {
		d := deps[i]
		obs, err := a.opts.Services.Query(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("query %s: %w", d, err))
			continue
		}
		if !obs.Installed || isUp(obs.Status.State) {
			continue
		}
		emit(fmt.Sprintf("starting %s again: it depends on %s and ran before", d, name), nil)
		if err := a.opts.Services.Start(d, defaultStartWait); err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", d, err))
		}
	}
	st.ClearStoppedDependents(name)
	if err := st.Save(a.layout); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("service %s: starting the services that depend on it again: %w", name, errors.Join(errs...))
	}
	return nil
}

// restoreDependents finishes what a dead agent left: dependents it stopped
// for a service that runs again (a stop that failed half way, or a start
// that was killed before it got to them) are started. Those of a service
// that is still stopped wait for its next start. Failures are reported,
// not returned, so that they never keep the host locked.
func (a *Agent) restoreDependents(emit progressFunc) {
	st, err := a.loadState()
	if err != nil || len(st.StoppedDependents) == 0 {
		return
	}
	for name := range st.StoppedDependents {
		obs, err := a.opts.Services.Query(name)
		if err != nil || !obs.Installed || !isUp(obs.Status.State) {
			continue
		}
		if err := a.startDependents(st, name, emit); err != nil {
			emit(err.Error(), nil)
		}
	}
}
