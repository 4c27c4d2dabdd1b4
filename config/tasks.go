package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

// Task defaults and bounds, in one place.
const (
	// DefaultTaskTimeLimit is the Task Scheduler's own default.
	DefaultTaskTimeLimit = 72 * time.Hour
	// DefaultRetryInterval is the pause before a failed run is tried
	// again; the Task Scheduler's shortest.
	DefaultRetryInterval = time.Minute
	maxTaskInterval      = 31 * 24 * time.Hour
)

// Task if_running values.
const (
	IfRunningIgnore   = "ignore"
	IfRunningQueue    = "queue"
	IfRunningParallel = "parallel"
	IfRunningStop     = "stop"
)

// Trigger kinds.
const (
	TriggerDaily   = "daily"
	TriggerWeekly  = "weekly"
	TriggerEvery   = "every"
	TriggerStartup = "startup"
	TriggerLogon   = "logon"
)

// Weekdays in the Task Scheduler's order.
var Weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// Task is a program the Task Scheduler runs on its hosts when its
// triggers fire. Its binary, arguments, account and environment follow
// a service's rules.
type Task struct {
	Name        string
	Hosts       []string // resolved host names, sorted
	Binary      Binary
	Version     string // empty: the planner uses the artifact's short hash
	Description string
	Args        []Text
	Env         map[string]Text
	Account     Account
	WorkDir     string // absolute Windows path; empty: the task's own folder
	Triggers    []Trigger
	TimeLimit   time.Duration // 0: no limit
	IfRunning   string
	Retry       *Retry // nil: a failed run is not tried again
	Enabled     bool
	Firewall    *Firewall

	DeclRange hcl.Range
}

// Trigger is when a task runs: daily or weekly at a local time, every
// interval, when the machine starts, or when a user logs on.
type Trigger struct {
	Kind  string
	At    string   // "HH:MM", for daily and weekly
	Days  []string // weekly, in Weekdays order
	Every time.Duration
}

// Retry is how often a failed run is tried again, and how long apart.
type Retry struct {
	Count    int
	Interval time.Duration
}

type taskShape struct {
	Name        string           `hcl:"name,label"`
	Hosts       hcl.Expression   `hcl:"hosts"`
	Binary      hcl.Expression   `hcl:"binary"`
	Version     hcl.Expression   `hcl:"version,optional"`
	Description hcl.Expression   `hcl:"description,optional"`
	Args        hcl.Expression   `hcl:"args,optional"`
	Env         hcl.Expression   `hcl:"env,optional"`
	WorkDir     hcl.Expression   `hcl:"work_dir,optional"`
	TimeLimit   hcl.Expression   `hcl:"time_limit,optional"`
	IfRunning   hcl.Expression   `hcl:"if_running,optional"`
	Enabled     hcl.Expression   `hcl:"enabled,optional"`
	Account     []*accountShape  `hcl:"account,block"`
	Triggers    []*triggerShape  `hcl:"trigger,block"`
	Retry       []*retryShape    `hcl:"retry,block"`
	Firewall    []*firewallShape `hcl:"firewall,block"`
	DefRange    hcl.Range        `hcl:",def_range"`
	NameRange   hcl.Range        `hcl:"name,label_range"`
}

type triggerShape struct {
	Daily     hcl.Expression `hcl:"daily,optional"`
	Weekly    hcl.Expression `hcl:"weekly,optional"`
	Days      hcl.Expression `hcl:"days,optional"`
	Every     hcl.Expression `hcl:"every,optional"`
	AtStartup hcl.Expression `hcl:"at_startup,optional"`
	AtLogon   hcl.Expression `hcl:"at_logon,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type retryShape struct {
	Count    hcl.Expression `hcl:"count"`
	Interval hcl.Expression `hcl:"interval,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

// TaskAttributes lists every attribute a task block accepts, as paths
// such as "trigger.daily", read from the schema itself.
func TaskAttributes() []string {
	return schemaAttributes(reflect.TypeOf(taskShape{}), "")
}

type taskDecl struct {
	shape *taskShape
	file  *sourceFile
}

// Task returns the task with the given name, or nil.
func (c *Config) Task(name string) *Task {
	for _, t := range c.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (l *loader) decodeTasks(cfg *Config) []*Task {
	var out []*Task
	for _, d := range sortedBy(l.tasks, func(d *taskDecl) string { return d.shape.Name }) {
		if t := l.decodeTask(cfg, d); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// decodeTask evaluates one task. It returns nil for a task that runs on
// no host of the chosen environment.
func (l *loader) decodeTask(cfg *Config, d *taskDecl) *Task {
	s := d.shape
	owner := fmt.Sprintf("task %q", s.Name)
	what := func(attr string) string { return owner + " " + attr }
	ev := l.within(d.file)
	ev.each = eachScope{noHost: &refusal{"Reference not allowed here", "each.host is only known in a service block; a task block is the same on every host."}}
	ev.required(s.Hosts, capitalized(owner), "hosts")
	ev.required(s.Binary, capitalized(owner), "binary")
	hosts, elsewhere := l.hostsOf(ev, cfg, s.Hosts, owner)
	if len(hosts) == 0 && elsewhere {
		return nil
	}
	t := &Task{
		Name: s.Name, Hosts: hosts, DeclRange: s.DefRange,
		Binary:  binaryOf(ev, cfg, s.Binary, d.file.dir, owner),
		Version: versionOf(ev, s.Version, what("version")),
		Args:    ev.texts(s.Args, what("args")),
		Env:     envOf(ev, s.Env, owner),
		// LocalSystem by default, not a virtual account as for a service:
		// the Task Scheduler cannot run a task as NT SERVICE\NAME.
		Account:   accountOf(ev, s.Account, owner, "", "LocalSystem"),
		TimeLimit: ev.duration(s.TimeLimit, what("time_limit"), DefaultTaskTimeLimit),
		IfRunning: ev.oneOf(s.IfRunning, what("if_running"), IfRunningIgnore, IfRunningIgnore, IfRunningQueue, IfRunningParallel, IfRunningStop),
		Enabled:   ev.boolean(s.Enabled, what("enabled"), true),
		Firewall:  firewallBlock(ev, s.Firewall, owner),
	}
	if v, ok := ev.str(s.Description, what("description")); ok {
		if len(v) > 2048 || strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0 {
			ev.errorf(s.Description.Range(), "Invalid description", "%s must be at most 2048 characters without control characters.", what("description"))
		}
		t.Description = v
	}
	if v, ok := ev.str(s.WorkDir, what("work_dir")); ok {
		if err := validWindowsPath(v); err != nil {
			ev.errorf(s.WorkDir.Range(), "Invalid working folder", "%s %s.", what("work_dir"), err)
		}
		t.WorkDir = v
	}
	if len(s.Triggers) == 0 {
		ev.errorf(s.DefRange, "Missing trigger", "%s needs at least one trigger block saying when it runs: daily = \"02:00\", weekly = \"02:00\" with days, every = \"15m\", at_startup = true or at_logon = true.", capitalized(owner))
	}
	for _, tb := range s.Triggers {
		if tr, ok := triggerOf(ev, tb, owner); ok {
			t.Triggers = append(t.Triggers, tr)
		}
	}
	if r, ok := onlyOne(ev, s.Retry, func(r *retryShape) hcl.Range { return r.DefRange }, owner, "retry"); ok {
		ev.required(r.Count, capitalized(owner)+" retry", "count")
		t.Retry = &Retry{
			Count:    ev.integer(r.Count, what("retry count"), 1, 1, 999),
			Interval: ev.duration(r.Interval, what("retry interval"), DefaultRetryInterval),
		}
		if err := taskInterval(t.Retry.Interval); err != nil {
			ev.errorf(r.Interval.Range(), "Invalid retry interval", "%s %s.", what("retry interval"), err)
		}
	}
	return t
}

// versionOf evaluates a release label.
func versionOf(ev *evaluator, expr hcl.Expression, what string) string {
	v, ok := ev.str(expr, what)
	if !ok {
		return ""
	}
	if v == "" || len(v) > 128 || strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		ev.errorf(expr.Range(), "Invalid version", "%s must be a non-empty label of at most 128 characters without spaces, such as \"1.4.2\".", what)
	}
	return v
}

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// triggerOf evaluates one trigger block, which sets exactly one of
// daily, weekly (with days), every, at_startup and at_logon.
func triggerOf(ev *evaluator, tb *triggerShape, owner string) (Trigger, bool) {
	what := func(attr string) string { return owner + " trigger " + attr }
	var set []string
	for attr, expr := range map[string]hcl.Expression{"daily": tb.Daily, "weekly": tb.Weekly, "every": tb.Every, "at_startup": tb.AtStartup, "at_logon": tb.AtLogon} {
		if !absent(expr) {
			set = append(set, attr)
		}
	}
	sort.Strings(set)
	if len(set) != 1 {
		ev.errorf(tb.DefRange, "Invalid trigger", "A trigger of %s sets %s; it needs exactly one of daily, weekly, every, at_startup and at_logon. Write one trigger block for each.", owner, orNothing(set))
		return Trigger{}, false
	}
	if !absent(tb.Days) && set[0] != "weekly" {
		ev.errorf(tb.Days.Range(), "days without weekly", "%s only applies to a weekly trigger.", what("days"))
	}
	clock := func(expr hcl.Expression, attr string) string {
		v, ok := ev.str(expr, what(attr))
		if ok && !clockRE.MatchString(v) {
			ev.errorf(expr.Range(), "Invalid time of day", "%s must be a time of day on the host's clock, HH:MM from 00:00 to 23:59, not %q.", what(attr), v)
		}
		return v
	}
	on := func(expr hcl.Expression, attr string) bool {
		if !ev.boolean(expr, what(attr), true) {
			ev.errorf(expr.Range(), "Trigger that never fires", "%s is false, so the trigger would never fire; leave the trigger out instead.", what(attr))
		}
		return true
	}
	switch set[0] {
	case "daily":
		return Trigger{Kind: TriggerDaily, At: clock(tb.Daily, "daily")}, true
	case "weekly":
		tr := Trigger{Kind: TriggerWeekly, At: clock(tb.Weekly, "weekly")}
		ev.required(tb.Days, capitalized(owner)+" weekly trigger", "days")
		for _, d := range ev.strs(tb.Days, what("days")) {
			d = strings.ToLower(d)
			switch {
			case !slices.Contains(Weekdays, d):
				ev.errorf(tb.Days.Range(), "Invalid day", "%s: %q is not a day; write monday, tuesday... sunday.", what("days"), d)
			case slices.Contains(tr.Days, d):
				ev.errorf(tb.Days.Range(), "Day listed twice", "%s lists %s more than once.", what("days"), d)
			default:
				tr.Days = append(tr.Days, d)
			}
		}
		sort.Slice(tr.Days, func(i, j int) bool { return slices.Index(Weekdays, tr.Days[i]) < slices.Index(Weekdays, tr.Days[j]) })
		return tr, true
	case "every":
		d := ev.duration(tb.Every, what("every"), time.Hour)
		if err := taskInterval(d); err != nil {
			ev.errorf(tb.Every.Range(), "Invalid interval", "%s %s.", what("every"), err)
		}
		return Trigger{Kind: TriggerEvery, Every: d}, true
	case "at_startup":
		return Trigger{Kind: TriggerStartup}, on(tb.AtStartup, "at_startup")
	default:
		return Trigger{Kind: TriggerLogon}, on(tb.AtLogon, "at_logon")
	}
}

// taskInterval checks an interval the Task Scheduler takes: whole
// minutes, from one minute to 31 days.
func taskInterval(d time.Duration) error {
	switch {
	case d < time.Minute || d > maxTaskInterval:
		return fmt.Errorf("is %s; the Task Scheduler takes one minute to 31 days", d)
	case d%time.Minute != 0:
		return fmt.Errorf("is %s, not whole minutes, which the Task Scheduler needs", d)
	}
	return nil
}

func orNothing(set []string) string {
	if len(set) == 0 {
		return "none of them"
	}
	return strings.Join(set, " and ")
}
