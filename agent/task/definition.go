package task

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Folder is the Task Scheduler folder gsd's tasks live in; a task outside
// it is never touched.
const Folder = `\gsd`

// Logon types of a task's principal (TASK_LOGON_TYPE).
const (
	logonPassword       = 1
	logonServiceAccount = 5
)

// principal is who a task runs as, in the Task Scheduler's terms.
type principal struct {
	UserID    string // as registered: "NT AUTHORITY\SYSTEM", DOMAIN\user
	SID       string // in the definition, for the built-in accounts
	LogonType int
	Password  string
}

// principalOf maps an account as gsd writes it (see config's account
// rules) to the Task Scheduler's principal.
func principalOf(a protocol.Account) principal {
	switch strings.ToLower(a.Name) {
	case "", "localsystem":
		return principal{UserID: `NT AUTHORITY\SYSTEM`, SID: "S-1-5-18", LogonType: logonServiceAccount}
	case `nt authority\localservice`:
		return principal{UserID: `NT AUTHORITY\LOCAL SERVICE`, SID: "S-1-5-19", LogonType: logonServiceAccount}
	case `nt authority\networkservice`:
		return principal{UserID: `NT AUTHORITY\NETWORK SERVICE`, SID: "S-1-5-20", LogonType: logonServiceAccount}
	}
	// A user with its password; a group managed service account (name$)
	// logs on the same way, with the password Windows keeps for it.
	return principal{UserID: a.Name, LogonType: logonPassword, Password: a.Password}
}

// The task XML schema's elements gsd writes
// (http://schemas.microsoft.com/windows/2004/02/mit/task).
type definition struct {
	XMLName          xml.Name         `xml:"Task"`
	Version          string           `xml:"version,attr"`
	Xmlns            string           `xml:"xmlns,attr"`
	RegistrationInfo registrationInfo `xml:"RegistrationInfo"`
	Triggers         triggers         `xml:"Triggers"`
	Principals       principals       `xml:"Principals"`
	Settings         settings         `xml:"Settings"`
	Actions          actions          `xml:"Actions"`
}

type registrationInfo struct {
	Author      string `xml:"Author"`
	Description string `xml:"Description,omitempty"`
	URI         string `xml:"URI"`
}

type triggers struct {
	Calendar []calendarTrigger `xml:"CalendarTrigger"`
	Time     []timeTrigger     `xml:"TimeTrigger"`
	Boot     []simpleTrigger   `xml:"BootTrigger"`
	Logon    []simpleTrigger   `xml:"LogonTrigger"`
}

type calendarTrigger struct {
	StartBoundary  string          `xml:"StartBoundary"`
	Enabled        bool            `xml:"Enabled"`
	ScheduleByDay  *scheduleByDay  `xml:"ScheduleByDay"`
	ScheduleByWeek *scheduleByWeek `xml:"ScheduleByWeek"`
}

type scheduleByDay struct {
	DaysInterval int `xml:"DaysInterval"`
}

type scheduleByWeek struct {
	DaysOfWeek    daysOfWeek `xml:"DaysOfWeek"`
	WeeksInterval int        `xml:"WeeksInterval"`
}

type day struct{}

type daysOfWeek struct {
	Sunday    *day `xml:"Sunday"`
	Monday    *day `xml:"Monday"`
	Tuesday   *day `xml:"Tuesday"`
	Wednesday *day `xml:"Wednesday"`
	Thursday  *day `xml:"Thursday"`
	Friday    *day `xml:"Friday"`
	Saturday  *day `xml:"Saturday"`
}

type timeTrigger struct {
	StartBoundary string     `xml:"StartBoundary"`
	Enabled       bool       `xml:"Enabled"`
	Repetition    repetition `xml:"Repetition"`
}

type repetition struct {
	Interval          string `xml:"Interval"`
	StopAtDurationEnd bool   `xml:"StopAtDurationEnd"`
}

type simpleTrigger struct {
	Enabled bool `xml:"Enabled"`
}

type principals struct {
	Principal principalXML `xml:"Principal"`
}

type principalXML struct {
	ID        string `xml:"id,attr"`
	UserID    string `xml:"UserId"`
	LogonType string `xml:"LogonType"`
	RunLevel  string `xml:"RunLevel"`
}

type settings struct {
	MultipleInstancesPolicy    string            `xml:"MultipleInstancesPolicy"`
	DisallowStartIfOnBatteries bool              `xml:"DisallowStartIfOnBatteries"`
	StopIfGoingOnBatteries     bool              `xml:"StopIfGoingOnBatteries"`
	AllowHardTerminate         bool              `xml:"AllowHardTerminate"`
	StartWhenAvailable         bool              `xml:"StartWhenAvailable"`
	RunOnlyIfNetworkAvailable  bool              `xml:"RunOnlyIfNetworkAvailable"`
	AllowStartOnDemand         bool              `xml:"AllowStartOnDemand"`
	Enabled                    bool              `xml:"Enabled"`
	Hidden                     bool              `xml:"Hidden"`
	RunOnlyIfIdle              bool              `xml:"RunOnlyIfIdle"`
	WakeToRun                  bool              `xml:"WakeToRun"`
	ExecutionTimeLimit         string            `xml:"ExecutionTimeLimit"`
	Priority                   int               `xml:"Priority"`
	RestartOnFailure           *restartOnFailure `xml:"RestartOnFailure"`
}

type restartOnFailure struct {
	Interval string `xml:"Interval"`
	Count    int    `xml:"Count"`
}

type actions struct {
	Context string `xml:"Context,attr"`
	Exec    exec   `xml:"Exec"`
}

type exec struct {
	Command          string `xml:"Command"`
	Arguments        string `xml:"Arguments"`
	WorkingDirectory string `xml:"WorkingDirectory"`
}

var instancePolicies = map[string]string{
	protocol.IfRunningIgnore:   "IgnoreNew",
	protocol.IfRunningQueue:    "Queue",
	protocol.IfRunningParallel: "Parallel",
	protocol.IfRunningStop:     "StopExisting",
}

// dayBoundary is the start of every trigger: the date is in the past, the
// time of day is the trigger's, in the host's local time.
const dayBoundary = "2000-01-01T"

// Definition is the task XML for a release: its triggers and settings,
// and an action that runs command with args (the agent as task host) in
// dir. enabled false registers it disabled.
func Definition(spec protocol.TaskSpec, command string, args []string, dir string, enabled bool) (string, error) {
	p := principalOf(spec.Account)
	d := definition{
		Version: "1.2", Xmlns: "http://schemas.microsoft.com/windows/2004/02/mit/task",
		RegistrationInfo: registrationInfo{Author: "gsd", Description: spec.Description, URI: Folder + `\` + spec.Name},
		Principals:       principals{Principal: principalXML{ID: "Author", UserID: p.UserID, LogonType: "Password", RunLevel: "LeastPrivilege"}},
		Settings: settings{
			MultipleInstancesPolicy: instancePolicies[spec.IfRunning], AllowHardTerminate: true, StartWhenAvailable: true,
			AllowStartOnDemand: true, Enabled: enabled, ExecutionTimeLimit: isoDuration(spec.TimeLimitMS), Priority: 7,
		},
		Actions: actions{Context: "Author", Exec: exec{Command: command, Arguments: commandLine(args), WorkingDirectory: dir}},
	}
	if p.SID != "" {
		d.Principals.Principal.UserID, d.Principals.Principal.LogonType = p.SID, "ServiceAccount"
	}
	if d.Settings.MultipleInstancesPolicy == "" {
		return "", fmt.Errorf("if_running %q is not one the Task Scheduler knows", spec.IfRunning)
	}
	if r := spec.Retry; r != nil {
		d.Settings.RestartOnFailure = &restartOnFailure{Interval: isoDuration(r.IntervalMS), Count: r.Count}
	}
	for _, t := range spec.Triggers {
		switch t.Kind {
		case protocol.TriggerDaily:
			d.Triggers.Calendar = append(d.Triggers.Calendar, calendarTrigger{StartBoundary: dayBoundary + t.At + ":00", Enabled: true, ScheduleByDay: &scheduleByDay{DaysInterval: 1}})
		case protocol.TriggerWeekly:
			w := &scheduleByWeek{WeeksInterval: 1}
			for _, name := range t.Days {
				set := map[string]**day{"sunday": &w.DaysOfWeek.Sunday, "monday": &w.DaysOfWeek.Monday, "tuesday": &w.DaysOfWeek.Tuesday,
					"wednesday": &w.DaysOfWeek.Wednesday, "thursday": &w.DaysOfWeek.Thursday, "friday": &w.DaysOfWeek.Friday, "saturday": &w.DaysOfWeek.Saturday}[name]
				if set == nil {
					return "", fmt.Errorf("%q is not a weekday", name)
				}
				*set = &day{}
			}
			d.Triggers.Calendar = append(d.Triggers.Calendar, calendarTrigger{StartBoundary: dayBoundary + t.At + ":00", Enabled: true, ScheduleByWeek: w})
		case protocol.TriggerEvery:
			d.Triggers.Time = append(d.Triggers.Time, timeTrigger{StartBoundary: dayBoundary + "00:00:00", Enabled: true, Repetition: repetition{Interval: isoDuration(t.EveryMS)}})
		case protocol.TriggerStartup:
			d.Triggers.Boot = append(d.Triggers.Boot, simpleTrigger{Enabled: true})
		case protocol.TriggerLogon:
			d.Triggers.Logon = append(d.Triggers.Logon, simpleTrigger{Enabled: true})
		default:
			return "", fmt.Errorf("trigger %q is not one gsd knows", t.Kind)
		}
	}
	b, err := xml.MarshalIndent(d, "", "  ")
	return string(b), err
}

// isoDuration writes milliseconds as the task schema's durations: PT15M,
// PT1H30M; PT0S means no limit.
func isoDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 {
		return "PT0S"
	}
	out := "PT"
	if h := d / time.Hour; h > 0 {
		out += fmt.Sprintf("%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		out += fmt.Sprintf("%dM", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		out += fmt.Sprintf("%dS", s)
	}
	return out
}

// commandLine joins arguments as Windows programs split them
// (CommandLineToArgvW): quoted when they hold spaces or quotes, with
// backslashes doubled before a quote.
func commandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = quoteArg(a)
	}
	return strings.Join(out, " ")
}

func quoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, c := range a {
		switch c {
		case '\\':
			slashes++
			continue
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
		}
		slashes = 0
		b.WriteRune(c)
	}
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}
