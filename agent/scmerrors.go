package agent

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Windows error codes of the service manager that the agent explains.
// syscall.Errno is windows.Errno on Windows, and the fakes return the same
// numbers elsewhere.
const (
	errServiceRequestTimeout  = syscall.Errno(1053) // ERROR_SERVICE_REQUEST_TIMEOUT
	errInvalidServiceAccount  = syscall.Errno(1057) // ERROR_INVALID_SERVICE_ACCOUNT
	errServiceLogonFailed     = syscall.Errno(1069) // ERROR_SERVICE_LOGON_FAILED
	errServiceMarkedForDelete = syscall.Errno(1072) // ERROR_SERVICE_MARKED_FOR_DELETE
)

// HandleHolders is what a ServiceControl may offer to say which running
// programs are known to keep service handles open (the Services console,
// Task Manager, Process Explorer), so that a service stuck "marked for
// deletion" can be explained.
type HandleHolders interface {
	ServiceHandleHolders() []string
}

// explainSCM says, naming the host, what a service manager failure means
// for this service and how to fix it; other failures pass unchanged.
func explainSCM(name string, spec protocol.ServiceSpec, err error) error {
	host := hostname()
	account := spec.Account.Name
	if account == "" {
		account = "LocalSystem"
	}
	switch {
	case errors.Is(err, errServiceLogonFailed):
		fix := "check the account's password (account.password: changed, expired, or the account locked or disabled) and that no group policy takes \"Log on as a service\" away from it (gsd gives that right; secpol.msc, User Rights Assignment, shows it)"
		switch protocol.AccountKind(account) {
		case protocol.AccountManaged:
			fix = fmt.Sprintf("check that the host may use the group managed service account: run Test-ADServiceAccount %s on %s, and add the computer to the account's PrincipalsAllowedToRetrieveManagedPassword if it fails", strings.TrimSuffix(accountUser(account), "$"), host)
		case protocol.AccountBuiltin, protocol.AccountVirtual:
			fix = "a built-in or virtual account needs no password or right: check the service's log on settings in services.msc and the host's event log (System, source Service Control Manager)"
		}
		return fmt.Errorf("the service manager on %s could not log service %s on as %s (ERROR_SERVICE_LOGON_FAILED, 1069): %w. Fix: %s", host, name, account, err, fix)
	case errors.Is(err, errInvalidServiceAccount):
		return fmt.Errorf("the service manager on %s does not accept %s as the account of service %s (ERROR_INVALID_SERVICE_ACCOUNT, 1057): %w. Fix: check account.name (DOMAIN\\user, .\\user for a local account, user@domain, DOMAIN\\gmsa$ for a group managed service account) and that the account exists for this host", host, account, name, err)
	case errors.Is(err, errServiceRequestTimeout):
		if spec.Mode == protocol.ModeWrapped {
			return fmt.Errorf("service %s on %s did not answer the service manager in time (ERROR_SERVICE_REQUEST_TIMEOUT, 1053): %w. Fix: the host may be overloaded, or something keeps gsd-agent.exe (the service host) from starting; see the host's event log", name, host, err)
		}
		return fmt.Errorf("service %s on %s did not answer the service manager in time (ERROR_SERVICE_REQUEST_TIMEOUT, 1053): %w. Fix: a native binary must speak to the service manager (golang.org/x/sys/windows/svc or kardianos/service); one that does not, like a plain console program, should run with mode = \"wrapped\"", name, host, err)
	}
	return err
}

func accountUser(account string) string {
	if _, user, ok := strings.Cut(account, `\`); ok {
		return user
	}
	return account
}

// DefaultMarkedForDeleteWait bounds how long an activation waits for a
// same-named service that is marked for deletion to go.
const DefaultMarkedForDeleteWait = 30 * time.Second

// configureService creates or reconfigures a service. A service Windows
// has marked for deletion (ERROR_SERVICE_MARKED_FOR_DELETE: deleted while
// another program held a handle to it) can be neither until the last
// handle closes, so the agent waits for that, within a bound, and then
// names the programs that may hold it.
func (a *Agent) configureService(name string, spec protocol.ServiceSpec, cfg InstallConfig, installed bool, emit progressFunc) (map[string]string, error) {
	wait := a.opts.MarkedForDeleteWait
	if wait <= 0 {
		wait = DefaultMarkedForDeleteWait
	}
	deadline := time.Now().Add(wait)
	for told := false; ; told = true {
		var gaps map[string]string
		var err error
		if installed {
			gaps, err = a.opts.Services.Reconfigure(name, cfg)
		} else {
			gaps, err = a.opts.Services.Install(name, cfg)
		}
		if !errors.Is(err, errServiceMarkedForDelete) {
			if err != nil {
				err = explainSCM(name, spec, err)
			}
			return gaps, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("service %s on %s is marked for deletion and is still there after %s (ERROR_SERVICE_MARKED_FOR_DELETE, 1072): %w. Fix: Windows removes it once every program holding it open lets go; close %s, or restart the host", name, hostname(), wait, err, a.handleHolders())
		}
		if !told {
			emit(fmt.Sprintf("%s is marked for deletion on %s; waiting up to %s for the programs holding it open to let go", name, hostname(), wait), nil)
		}
		time.Sleep(markedForDeletePoll(wait))
		obs, qerr := a.opts.Services.Query(name)
		if qerr != nil {
			return nil, qerr
		}
		installed = obs.Installed && !obs.MarkedForDelete
	}
}

func markedForDeletePoll(wait time.Duration) time.Duration {
	return min(wait/20, 500*time.Millisecond)
}

// handleHolders names what may hold a service open.
func (a *Agent) handleHolders() string {
	if hh, ok := a.opts.Services.(HandleHolders); ok {
		if found := hh.ServiceHandleHolders(); len(found) > 0 {
			return "these programs, which keep service handles open: " + strings.Join(found, ", ")
		}
	}
	return "the Services console (services.msc), Task Manager, Process Explorer or any other program that shows services"
}
