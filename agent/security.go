package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
	"github.com/gsd-deploy/gsd/agent/winsec"
)

func (a *Agent) security() winsec.Host {
	if a.opts.Security != nil {
		return a.opts.Security
	}
	return winsec.Local()
}

// hostForgetsSecurity reports whether this host accepts access lists and
// account rights without keeping them: Wine, and a system without
// Windows security, whose folders map to Unix modes as Wine's do. Only
// there is a setting that does not read back a gap; on Windows proper it
// means the protection is not in place, and the agent refuses to go on.
// A variable so that tests can play either host.
var hostForgetsSecurity = func() bool { return runtime.GOOS != "windows" || wine.Detected() }

// notKept reports whether err is a setting the host accepted and did not
// keep, on a host known to keep none.
func notKept(err error) bool {
	var nk *winsec.NotKeptError
	return errors.As(err, &nk) && hostForgetsSecurity()
}

// gapOf sorts a failure of the host's security calls: one the host cannot
// make (a system without Windows security, Wine's stubs) or, on a host
// that keeps no access lists, cannot keep becomes a gap to report; any
// other is an error.
func gapOf(err error) (gap string, fatal error) {
	switch {
	case err == nil:
		return "", nil
	case notKept(err), errors.Is(err, winsec.ErrUnsupported):
		return err.Error(), nil
	}
	return "", err
}

// secureRoot restricts the root to administrators before the agent
// trusts anything in it, once per session (see winsec.SecureRoot), and
// lets the users' group read and run the agent binaries, which wrapped
// services run as their own accounts. What it repaired is kept for facts.
func (a *Agent) secureRoot() error {
	if a.rootSecured {
		return nil
	}
	h := a.security()
	repairs, err := winsec.SecureRoot(h, a.layout.Root)
	if err == nil {
		err = winsec.Grant(h, a.layout.BinDir(), winsec.SIDUsers, winsec.ReadExecute)
	}
	gap, err := gapOf(err)
	if err != nil {
		return err
	}
	if gap != "" {
		// Nothing was really put right on such a host.
		repairs = nil
	}
	a.rootSecured, a.rootGap, a.rootRepairs = true, gap, repairs
	return nil
}

// grantAccess lets the account a service runs as use what its release
// needs, which the root's access list otherwise keeps to SYSTEM and
// Administrators: read and run its binary's folder, read its files (and
// its wrapper's configuration), modify its log and working folders.
// LocalSystem needs nothing. It returns what this host could not put in
// place.
func (a *Agent) grantAccess(spec protocol.ServiceSpec, binary string) (gaps []string, err error) {
	h := a.security()
	sid, err := h.SID(spec.Account.Name)
	if gap, err := gapOf(err); err != nil {
		return nil, fmt.Errorf("resolving the service account %s: %w", spec.Account.Name, err)
	} else if gap != "" {
		return []string{"service account access to its folders not applied on this host: " + gap}, nil
	}
	if sid == winsec.SIDSystem {
		return nil, nil
	}
	type grant struct {
		dir    string
		access winsec.Access
	}
	grants := []grant{
		{filepath.Dir(binary), winsec.ReadExecute},
		{a.layout.ServiceDir(spec.Name), winsec.Read},
		{a.logDirOf(spec), winsec.Modify},
	}
	if spec.Mode == protocol.ModeWrapped {
		grants = append(grants, grant{a.workDirOf(spec), winsec.Modify})
	}
	for _, f := range spec.Files {
		if f.Path != "" {
			grants = append(grants, grant{filepath.Dir(a.hostPath(f.Path)), winsec.Read})
		}
	}
	var forgotten []string
	for _, g := range grants {
		err := winsec.Grant(h, g.dir, sid, g.access)
		if notKept(err) {
			forgotten = append(forgotten, g.dir)
			continue
		}
		gap, err := gapOf(err)
		if err != nil {
			return nil, fmt.Errorf("letting %s use %s: %w", spec.Account.Name, g.dir, err)
		}
		if msg := "service account access not applied on this host: " + gap; gap != "" && !slices.Contains(gaps, msg) {
			gaps = append(gaps, msg)
		}
	}
	if len(forgotten) > 0 {
		gaps = append(gaps, fmt.Sprintf("this host keeps no access lists, so %s's access to %s is not in place", spec.Account.Name, strings.Join(forgotten, ", ")))
	}
	return gaps, nil
}

// grantFolder lets account use dir with access (see winsec.Grant), for
// the kinds that run programs as an account of their own, as grantAccess
// does for a service; LocalSystem needs nothing.
func (a *Agent) grantFolder(dir, account string, access winsec.Access) (gap string, err error) {
	h := a.security()
	sid, err := h.SID(account)
	if gap, err := gapOf(err); err != nil {
		return "", fmt.Errorf("resolving the account %s: %w", account, err)
	} else if gap != "" {
		return "account access to its folders not applied on this host: " + gap, nil
	}
	if sid == winsec.SIDSystem {
		return "", os.MkdirAll(dir, 0o755)
	}
	gap, err = gapOf(winsec.Grant(h, dir, sid, access))
	if err != nil {
		return "", fmt.Errorf("letting %s use %s: %w", account, dir, err)
	}
	return gap, nil
}

// logDirOf and workDirOf are where a release's logs and working folder
// are on this host.
func (a *Agent) logDirOf(spec protocol.ServiceSpec) string {
	if w := spec.Wrapper; w != nil && w.LogDir != "" {
		return a.hostPath(w.LogDir)
	}
	return a.layout.LogDir(spec.Name)
}

func (a *Agent) workDirOf(spec protocol.ServiceSpec) string {
	if w := spec.Wrapper; w != nil && w.WorkDir != "" {
		return a.hostPath(w.WorkDir)
	}
	return a.layout.WorkDir(spec.Name)
}

// needsLogonRight: users and group managed service accounts log on as a
// service only with the right; built-in and virtual accounts have it.
func needsLogonRight(account string) bool {
	k := protocol.AccountKind(account)
	return k == protocol.AccountUser || k == protocol.AccountManaged
}

// ensureLogonRight gives a service's account "Log on as a service" unless
// it holds it, and records whether the agent gave it, so it is taken away
// with the last service that runs as the account and never if the account
// held it before.
func (a *Agent) ensureLogonRight(st *state.State, account string) (gap string, err error) {
	if !needsLogonRight(account) {
		return "", nil
	}
	key := strings.ToLower(account)
	rec := &state.LogonRight{Account: account}
	if old := st.LogonRights[key]; old != nil {
		*rec = *old
	}
	h := a.security()
	sid, err := h.SID(account)
	if err != nil && !errors.Is(err, winsec.ErrUnsupported) {
		return "", fmt.Errorf("host %s does not know the account %s: %w. Fix: check account.name (DOMAIN\\user, .\\user for a local account, user@domain, DOMAIN\\gmsa$ for a group managed service account) and that the host can reach the account's domain", hostname(), account, err)
	}
	added := false
	if err == nil {
		rec.SID = sid
		added, err = winsec.EnsureRight(h, sid, winsec.ServiceLogonRight)
	}
	if gap, err = gapOf(err); err != nil {
		return "", fmt.Errorf("giving %s the right to log on as a service: %w", account, err)
	}
	// A right the host did not keep is not the agent's to take away.
	rec.Added, rec.Gap = (rec.Added || added) && gap == "", gap
	// Recorded at once, in the state on disk too: a right the agent gave
	// must be known as its own even if the activation fails after this.
	for _, s := range []*state.State{st, a.freshState()} {
		if s == nil {
			continue
		}
		if s.LogonRights == nil {
			s.LogonRights = map[string]*state.LogonRight{}
		}
		s.LogonRights[key] = rec
		if s != st {
			if err := s.Save(a.layout); err != nil {
				return "", err
			}
		}
	}
	return gap, nil
}

// freshState is the state on disk, nil if it cannot be read.
func (a *Agent) freshState() *state.State {
	st, err := a.loadState()
	if err != nil {
		return nil
	}
	return st
}

// releaseLogonRights takes "Log on as a service" away from accounts that
// no managed service runs as any more, if the agent gave it; a right the
// account held before stays. st is saved by the caller.
func (a *Agent) releaseLogonRights(st *state.State, emit progressFunc) {
	used := map[string]bool{}
	for _, svc := range st.Services {
		if len(svc.Releases) > 0 {
			used[strings.ToLower(svc.Spec.Account.Name)] = true
		}
	}
	for key, rec := range st.LogonRights {
		if used[key] {
			continue
		}
		if rec.Added && rec.SID != "" && rec.Gap == "" {
			if err := a.security().RemoveRight(rec.SID, winsec.ServiceLogonRight); err != nil {
				emit(fmt.Sprintf("could not take the right to log on as a service from %s, which no gsd service runs as any more: %v", rec.Account, err), nil)
				continue
			}
			emit(fmt.Sprintf("took the right to log on as a service, which gsd gave, from %s: no gsd service runs as it any more", rec.Account), nil)
		}
		delete(st.LogonRights, key)
	}
}

// logonRightFact is what facts say of a service's logon right.
func logonRightFact(st *state.State, account string) (fact, unreadable string) {
	rec := st.LogonRights[strings.ToLower(account)]
	if rec == nil || !needsLogonRight(account) {
		return "", ""
	}
	if rec.Gap != "" {
		return "", "not kept by this host: " + rec.Gap
	}
	if rec.Added {
		return protocol.LogonRightGranted, unreadable
	}
	return protocol.LogonRightHeld, unreadable
}

// checkManagedAccount refuses a release whose group managed service
// account this host cannot use, before anything is stopped; a host that
// cannot tell lets it through (the start then says).
// owner names what runs as the account: "service api", "task report".
func (a *Agent) checkManagedAccount(owner, account string) error {
	if protocol.AccountKind(account) != protocol.AccountManaged {
		return nil
	}
	if p := a.accountFacts(account); p.Problem != "" {
		return failf(protocol.CodeBadRequest, "%s: host %s cannot run it as %s: %s", owner, hostname(), account, p.Problem)
	}
	return nil
}

func (a *Agent) accountFacts(account string) protocol.AccountFacts {
	af := protocol.AccountFacts{Name: account}
	if protocol.AccountKind(account) != protocol.AccountManaged {
		return af
	}
	st, err := a.security().ManagedAccount(account)
	switch {
	case err != nil:
		af.Unchecked = err.Error()
	case !st.Usable:
		af.Problem = st.Detail
	}
	return af
}

// withRecoveryPrivileges runs set, which writes failure actions, with the
// shutdown privilege enabled when an action reboots: Windows refuses such
// actions (access denied) to a caller without it.
func (a *Agent) withRecoveryPrivileges(r protocol.Recovery, set func() error) error {
	if reboots(r) {
		return a.security().WithPrivileges(set, winsec.ShutdownPrivilege)
	}
	return set()
}

func reboots(r protocol.Recovery) bool {
	return slices.ContainsFunc(r.Actions, func(act protocol.RecoveryAction) bool { return act.Type == "reboot" })
}

// rebootMessage is broadcast before a failure action restarts the host.
func rebootMessage(service string) string {
	return fmt.Sprintf("The service %s failed; its recovery actions, set by gsd, restart this computer.", service)
}

// verifiedArtifact finds a staged artifact and hashes it whole before it
// is activated: the hash cache trusts a file's size and time, which bytes
// replaced on disk can keep. An artifact whose bytes changed is removed,
// so that the next gsd apply stages it again.
func (a *Agent) verifiedArtifact(service, sha string) (string, error) {
	path, err := a.store.Find(sha)
	if err != nil {
		return "", failf(protocol.CodeNotFound, "service %s: %v", service, err)
	}
	got, err := artifacts.FileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("service %s: hashing %s: %w", service, path, err)
	}
	if got == sha {
		return path, nil
	}
	removed := "it is removed"
	if err := a.store.Remove(sha); err != nil {
		removed = fmt.Sprintf("removing it failed (%v)", err)
	}
	return "", failf(protocol.CodeHashMismatch, "service %s: the staged artifact %s on %s no longer holds the bytes staged (its SHA-256 is %s); %s, and the next gsd apply stages it again", service, path, hostname(), got, removed)
}
