package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/config"
)

// The SCM states a step cares about.
const stateRunning = "running"

const sensitiveValue = "(sensitive)"

// diffService compares one desired service with what the host reports.
// Every rule says whether its change needs a restart: settings the SCM
// applies at once (display name, description, start type, dependencies,
// recovery) do not; what the process reads when it starts (binary,
// arguments, account, environment, mode, wrapper settings) does. A new
// password for the same account does not either: the running process is
// logged on already, and the SCM uses the stored password only at the next
// start.
func diffService(svc *config.Service, want protocol.ServiceSpec, have *protocol.ServiceFacts) *Step {
	step := &Step{Address: "service." + svc.Name, Kind: protocol.KindService, Service: svc.Name, Version: want.Version, Artifact: want.Artifact}
	if have == nil || !have.Installed {
		step.Action = ActionCreate
		step.Start = svc.Start == config.StartAuto || svc.Start == config.StartDelayed
		step.Changes = creationChanges(svc, want)
		return step
	}
	var last protocol.ServiceSpec
	if have.LastApplied != nil {
		last = *have.LastApplied
	}
	if have.Current != nil {
		step.OldVersion = have.Current.Version
	}
	scm := have.Config
	if scm == nil {
		scm = &protocol.SCMConfig{}
	}
	d := &differ{step: step}

	haveSHA := have.BinarySHA256
	if haveSHA == "" && have.Current != nil {
		haveSHA = have.Current.Artifact
	}
	if haveSHA != want.Artifact {
		step.Action = ActionReplace
		d.change("binary", ShortHash(haveSHA), ShortHash(want.Artifact), false, true, "binary changed")
	}
	if step.OldVersion != want.Version && step.Action != ActionReplace {
		d.change("version", step.OldVersion, want.Version, false, false, "")
	}
	mode := orDefault(have.Mode, last.Mode)
	d.change("mode", mode, want.Mode, false, true, "mode changed")
	d.change("display_name", scm.DisplayName, want.DisplayName, false, false, "")
	d.change("description", scm.Description, want.Description, false, false, "")
	d.change("start", startOf(scm), want.Start, false, false, "")
	// Account names are case-insensitive to Windows.
	if !strings.EqualFold(canonicalAccount(scm.Account), canonicalAccount(want.Account.Name)) {
		d.change("account", canonicalAccount(scm.Account), canonicalAccount(want.Account.Name), false, true, "account changed")
		d.note(AccountPrivilege(want.Account.Name))
	}
	d.password(have.Password, want.Account.Password)

	// A wrapped service's SCM command line is the wrapper's; its own
	// arguments are what gsd last applied.
	haveArgs := scm.Args
	if want.Mode == config.ModeWrapped {
		haveArgs = last.Args
	}
	d.list("args", haveArgs, want.Args, anySensitive(svc.Args), true, "arguments changed")
	d.set("depends_on", scm.Dependencies, want.DependsOn)
	d.env(have.EnvSHA256, svc.Env)
	if want.Recovery != nil {
		d.change("recovery", recoveryString(have.Recovery), recoveryString(want.Recovery), false, false, "")
	} else if !recoveryEmpty(have.Recovery) {
		// No recovery block means no failure actions: gsd manages the
		// whole service, adopted ones included, so actions left from an
		// earlier block (or set by hand) are cleared.
		d.step.Changes = append(d.step.Changes, Change{Attribute: "recovery", Old: ptr(recoveryString(have.Recovery))})
	}
	if last.StopTimeout != 0 {
		d.change("stop_timeout", msString(last.StopTimeout), msString(want.StopTimeout), false, false, "")
	}
	if want.Wrapper != nil && last.Wrapper != nil {
		d.change("log", wrapperString(last.Wrapper), wrapperString(want.Wrapper), false, true, "log settings changed")
		d.change("work_dir", pathOrDefault(last.Wrapper.WorkDir), pathOrDefault(want.Wrapper.WorkDir), false, true, "working directory changed")
	}
	d.files(have.Files, want.Files)

	if step.Action == "" {
		step.Action = ActionNoOp
		if len(step.Changes) > 0 {
			step.Action = ActionUpdate
		}
	}
	running := have.Status != nil && have.Status.State == stateRunning
	shouldRun := svc.Start == config.StartAuto || svc.Start == config.StartDelayed
	switch {
	case !running && shouldRun:
		// A stopped service that should run is started, which also
		// makes any pending change take effect: no restart needed.
		step.Start = true
		step.Restart, step.RestartReasons = false, nil
		if step.Action == ActionNoOp {
			step.Action = ActionUpdate
			step.Changes = append(step.Changes, Change{Attribute: "state", Old: ptr(stateOf(have)), New: ptr(stateRunning)})
		}
	case !running:
		// A stopped manual service stays stopped; changes apply when it
		// next starts.
		step.Restart, step.RestartReasons, step.Reload = false, nil, false
	}
	if step.Restart {
		step.Reload = false // a restart rereads the files anyway
	}
	return step
}

type differ struct{ step *Step }

// change records a difference between old and new. restart marks changes
// that need the process restarted, with reason saying why.
func (d *differ) change(attr, old, new string, sensitive, restart bool, reason string) {
	if old == new {
		return
	}
	c := Change{Attribute: attr, Sensitive: sensitive, Restart: restart}
	if sensitive {
		old, new = sensitiveValue, sensitiveValue
	}
	c.Old, c.New = ptr(old), ptr(new)
	d.step.Changes = append(d.step.Changes, c)
	if restart {
		d.restart(reason)
	}
}

// note qualifies the change just recorded.
func (d *differ) note(n string) {
	if len(d.step.Changes) > 0 {
		d.step.Changes[len(d.step.Changes)-1].Note = n
	}
}

func (d *differ) restart(reason string) {
	d.step.Restart = true
	if !contains(d.step.RestartReasons, reason) {
		d.step.RestartReasons = append(d.step.RestartReasons, reason)
	}
}

func (d *differ) list(attr string, old, new []string, sensitive, restart bool, reason string) {
	if strings.Join(old, "\x00") == strings.Join(new, "\x00") && len(old) == len(new) {
		return
	}
	d.change(attr, listString(old), listString(new), sensitive, restart, reason)
}

// set compares Windows service names, which are case-insensitive and
// unordered as dependencies.
func (d *differ) set(attr string, old, new []string) {
	norm := func(l []string) []string {
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = strings.ToLower(s)
		}
		sort.Strings(out)
		return out
	}
	if strings.Join(norm(old), "\x00") == strings.Join(norm(new), "\x00") {
		return
	}
	d.change(attr, listString(old), listString(new), false, false, "")
}

// password compares the configured account password with the salted hash
// of the last applied one that the host reports, so no password is sent to
// plan. Without a hash (none was applied for this account, or by an older
// agent) a configured password counts as new. Both sides show as
// "(sensitive)": the plan holds neither the password nor a hash of it.
func (d *differ) password(have *protocol.PasswordHash, want string) {
	if want == "" || (have != nil && have.Matches(want)) {
		return
	}
	c := Change{Attribute: "account.password", New: ptr(sensitiveValue), Sensitive: true}
	if have != nil {
		c.Old = ptr(sensitiveValue)
	}
	d.step.Changes = append(d.step.Changes, c)
}

// env compares variable by variable. The host reports only hashes, so an
// old value is never shown; a new value is shown unless it is sensitive.
func (d *differ) env(have map[string]string, want map[string]config.Text) {
	names := map[string]bool{}
	for k := range have {
		names[k] = true
	}
	for k := range want {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		oldHash, had := have[k]
		w, wants := want[k]
		attr := "env." + k
		switch {
		case had && !wants:
			d.step.Changes = append(d.step.Changes, Change{Attribute: attr, Old: ptr("(set)"), Restart: true})
		case !had && wants:
			d.step.Changes = append(d.step.Changes, Change{Attribute: attr, New: ptr(shown(w)), Sensitive: w.Sensitive, Restart: true})
		case oldHash != protocol.HashEnv(map[string]string{k: w.Value})[k]:
			d.step.Changes = append(d.step.Changes, Change{Attribute: attr, Old: ptr("(changed)"), New: ptr(shown(w)), Sensitive: w.Sensitive, Restart: true})
		default:
			continue
		}
		d.restart("environment changed")
	}
}

// files compares managed files by content hash and place. What happens
// after a change is the file's own on_change.
func (d *differ) files(have []protocol.FileFacts, want []protocol.FileSpec) {
	byName := map[string]protocol.FileFacts{}
	for _, f := range have {
		byName[strings.ToLower(f.Name)] = f
	}
	for _, f := range want {
		old, had := byName[strings.ToLower(f.Name)]
		delete(byName, strings.ToLower(f.Name))
		moved := had && !strings.EqualFold(old.Path, f.Path)
		if had && !old.Missing && old.SHA256 == f.SHA256 && !moved {
			continue
		}
		c := Change{Attribute: "file." + f.Name, New: ptr(ShortHash(f.SHA256)), Sensitive: f.Sensitive}
		if had && !old.Missing {
			c.Old = ptr(ShortHash(old.SHA256))
		}
		if c.Sensitive {
			// Even a short hash lets a guess at a short secret be checked.
			c.New = ptr(sensitiveValue)
			if c.Old != nil {
				c.Old = ptr(sensitiveValue)
			}
		}
		if moved {
			d.step.Changes = append(d.step.Changes, Change{Attribute: "file." + f.Name + ".path", Old: ptr(pathOrDefault(old.Path)), New: ptr(pathOrDefault(f.Path))})
		}
		switch f.OnChange {
		case config.OnChangeRestart:
			c.Restart = true
			d.restart(fmt.Sprintf("file %s changed", f.Name))
		case config.OnChangeReload:
			d.step.Reload = true
		}
		if !moved || c.Old == nil || old.SHA256 != f.SHA256 {
			d.step.Changes = append(d.step.Changes, c)
		}
	}
	var removed []string
	for _, f := range byName {
		removed = append(removed, f.Name)
	}
	sort.Strings(removed)
	for _, n := range removed {
		d.step.Changes = append(d.step.Changes, Change{Attribute: "file." + n, Old: ptr(ShortHash(byName[strings.ToLower(n)].SHA256))})
	}
}

func pathOrDefault(p string) string {
	if p == "" {
		return "(default)"
	}
	return p
}

// creationChanges lists what a new service gets, so the plan shows it.
func creationChanges(svc *config.Service, want protocol.ServiceSpec) []Change {
	var out []Change
	add := func(attr, v string, sensitive bool) {
		if v == "" {
			return
		}
		if sensitive {
			v = sensitiveValue
		}
		out = append(out, Change{Attribute: attr, New: ptr(v), Sensitive: sensitive})
	}
	add("binary", ShortHash(want.Artifact), false)
	add("version", want.Version, false)
	add("mode", want.Mode, false)
	add("display_name", want.DisplayName, false)
	add("description", want.Description, false)
	add("start", want.Start, false)
	add("account", want.Account.Name, false)
	out[len(out)-1].Note = AccountPrivilege(want.Account.Name)
	add("account.password", want.Account.Password, true)
	if len(want.Args) > 0 {
		add("args", listString(want.Args), anySensitive(svc.Args))
	}
	if len(want.DependsOn) > 0 {
		add("depends_on", listString(want.DependsOn), false)
	}
	keys := make([]string, 0, len(svc.Env))
	for k := range svc.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("env."+k, svc.Env[k].Value, svc.Env[k].Sensitive)
	}
	if want.Recovery != nil {
		add("recovery", recoveryString(want.Recovery), false)
	}
	for _, f := range want.Files {
		add("file."+f.Name, ShortHash(f.SHA256), f.Sensitive)
		if f.Path != "" {
			add("file."+f.Name+".path", f.Path, false)
		}
	}
	if want.Wrapper != nil && want.Wrapper.LogDir != "" {
		add("log", wrapperString(want.Wrapper), false)
	}
	if want.Wrapper != nil {
		add("work_dir", want.Wrapper.WorkDir, false)
	}
	return out
}

// AccountPrivilege says how much an account may do on the host, for the
// plan to show beside it.
func AccountPrivilege(account string) string {
	switch canonicalAccount(account) {
	case "LocalSystem":
		return "highest privilege"
	case `NT AUTHORITY\LocalService`:
		return "low privilege, anonymous on the network"
	case `NT AUTHORITY\NetworkService`:
		return "low privilege, the computer's identity on the network"
	}
	switch protocol.AccountKind(account) {
	case protocol.AccountVirtual:
		return "virtual account, least privilege"
	case protocol.AccountManaged:
		return `group managed service account; gsd grants it "Log on as a service"`
	}
	return `user account; gsd grants it "Log on as a service"`
}

// AccountProblems are what a host said about the account a service or a
// task (what) is to run as, when asked (see FactsArgs).
func AccountProblems(host, what, account string, checked []protocol.AccountFacts) []string {
	for _, af := range checked {
		if strings.EqualFold(af.Name, account) && af.Problem != "" {
			return []string{fmt.Sprintf("host %s cannot run the %s as %s: %s", host, what, account, af.Problem)}
		}
	}
	return nil
}

// FactsArgs are what planning asks a host besides its facts: whether it
// can use the group managed service accounts its services and tasks are
// to run as.
func FactsArgs(cfg *config.Config, host string) protocol.FactsArgs {
	var args protocol.FactsArgs
	ask := func(hosts []string, account string) {
		if contains(hosts, host) && protocol.AccountKind(account) == protocol.AccountManaged && !contains(args.Accounts, account) {
			args.Accounts = append(args.Accounts, account)
		}
	}
	for _, svc := range cfg.Services {
		ask(svc.Hosts, svc.Account.Name)
	}
	for _, t := range cfg.Tasks {
		ask(t.Hosts, t.Account.Name)
	}
	return args
}

func shown(t config.Text) string {
	if t.Sensitive {
		return sensitiveValue
	}
	return t.Value
}

func anySensitive(ts []config.Text) bool {
	for _, t := range ts {
		if t.Sensitive {
			return true
		}
	}
	return false
}

func ptr(s string) *string { return &s }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func startOf(c *protocol.SCMConfig) string {
	if c.StartType == config.StartAuto && c.DelayedStart {
		return config.StartDelayed
	}
	return c.StartType
}

func stateOf(f *protocol.ServiceFacts) string {
	if f.Status == nil {
		return "unknown"
	}
	return f.Status.State
}

// canonicalAccount folds the spellings Windows treats as one account.
func canonicalAccount(a string) string {
	switch strings.ToLower(a) {
	case "", "localsystem", `nt authority\system`, `.\localsystem`:
		return "LocalSystem"
	case "localservice", `nt authority\localservice`:
		return `NT AUTHORITY\LocalService`
	case "networkservice", `nt authority\networkservice`:
		return `NT AUTHORITY\NetworkService`
	}
	return a
}

func listString(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// msString writes milliseconds the way the configuration does: 24h,
// 1m30s, 5s.
func msString(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// recoveryEmpty reports whether a host's failure policy has no actions, as
// a service without a recovery block has; nil (not reported) counts as
// empty, since there is nothing known to clear.
func recoveryEmpty(r *protocol.Recovery) bool {
	return r == nil || (len(r.Actions) == 0 && !r.OnNonCrash)
}

func recoveryString(r *protocol.Recovery) string {
	if r == nil {
		return ""
	}
	var parts []string
	for _, a := range r.Actions {
		if a.Type == "none" {
			parts = append(parts, "none")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s/%s", a.Type, msString(a.DelayMS)))
	}
	out := fmt.Sprintf("%s reset_after=%s on_non_crash=%v", strings.Join(parts, ","), msString(r.ResetAfterMS), r.OnNonCrash)
	if r.Command != "" {
		out += fmt.Sprintf(" command=%q", r.Command)
	}
	return out
}

func wrapperString(w *protocol.WrapperSpec) string {
	out := fmt.Sprintf("max_size=%d keep=%d", w.LogMaxBytes, w.LogKeep)
	if w.LogDir != "" {
		out += fmt.Sprintf(" dir=%q", w.LogDir)
	}
	return out
}
