package protocol

import "sort"

// KindTask is a scheduled task: a program the Task Scheduler runs on its
// triggers, hosted by the agent as it hosts wrapped services.
const KindTask = "task"

// Trigger kinds of a task.
const (
	TriggerDaily   = "daily"   // At, every day
	TriggerWeekly  = "weekly"  // At, on Days
	TriggerEvery   = "every"   // every EveryMS, from the task's registration on
	TriggerStartup = "startup" // when the machine starts
	TriggerLogon   = "logon"   // when any user logs on
)

// What a task does when it is due while a run of it is still going
// (the Task Scheduler's MultipleInstancesPolicy).
const (
	IfRunningIgnore   = "ignore"   // the new run does not start
	IfRunningQueue    = "queue"    // it starts when the one going ends
	IfRunningParallel = "parallel" // it starts beside it
	IfRunningStop     = "stop"     // the one going is stopped first
)

// Trigger is one of a task's triggers.
type Trigger struct {
	Kind string `json:"kind"`
	// At is the local time of day, "HH:MM", of daily and weekly triggers.
	At string `json:"at,omitempty"`
	// Days are the weekdays of a weekly trigger, "monday"...
	Days    []string `json:"days,omitempty"`
	EveryMS int64    `json:"every_ms,omitempty"`
}

// TaskRetry is how often, and how long apart, a failed run is tried
// again.
type TaskRetry struct {
	Count      int   `json:"count"`
	IntervalMS int64 `json:"interval_ms"`
}

// TaskSpec is one release of a scheduled task: everything its program
// sees, and when it runs. Its process part follows a service's rules
// for secrets.
type TaskSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Process
	// Dir is the working folder, an absolute Windows path; empty is the
	// task's own folder under the agent's root.
	Dir      string    `json:"dir,omitempty"`
	Triggers []Trigger `json:"triggers"`
	// TimeLimitMS stops a run that takes longer; 0 lets it run.
	TimeLimitMS int64      `json:"time_limit_ms"`
	IfRunning   string     `json:"if_running"`
	Retry       *TaskRetry `json:"retry,omitempty"`
	Disabled    bool       `json:"disabled,omitempty"`
}

// SecretKeys lists the secrets the spec needs filled in, sorted.
func (s TaskSpec) SecretKeys() []string {
	keys := s.Process.SecretKeys()
	sort.Strings(keys)
	return keys
}

// WithoutSecrets is the spec without secret values (see Process).
func (s TaskSpec) WithoutSecrets() TaskSpec {
	s.Process = s.Process.WithoutSecrets()
	return s
}

// Blind is the spec as plan files hold it (see Process.Blind).
func (s TaskSpec) Blind() TaskSpec {
	s.Process = s.Process.Blind()
	return s
}

// WithSecrets fills the spec's secrets back in, checking each against
// the hash the spec carries.
func (s TaskSpec) WithSecrets(secrets map[string]string) (TaskSpec, error) {
	p, err := s.Process.WithSecrets(secrets)
	s.Process = p
	return s, err
}
