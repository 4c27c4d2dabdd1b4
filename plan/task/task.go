package task

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/build"
	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/plan"
)

func init() { plan.Register(kind{}, plan.RankAfterServices) }

type kind struct{}

func (kind) Name() string { return protocol.KindTask }

// Spec is a task's whole release as the agent receives it, secrets
// included.
func Spec(t *config.Task, art *build.Artifact) protocol.TaskSpec {
	s := protocol.TaskSpec{
		Name:        t.Name,
		Description: t.Description,
		Process:     plan.ProcessOf(art, t.Version, t.Args, t.Account, t.Env),
		TimeLimitMS: t.TimeLimit.Milliseconds(),
		IfRunning:   t.IfRunning,
		Disabled:    !t.Enabled,
		Triggers:    []protocol.Trigger{},
	}
	s.Dir = t.WorkDir
	for _, tr := range t.Triggers {
		s.Triggers = append(s.Triggers, protocol.Trigger{Kind: tr.Kind, At: tr.At, Days: tr.Days, EveryMS: tr.Every.Milliseconds()})
	}
	if r := t.Retry; r != nil {
		s.Retry = &protocol.TaskRetry{Count: r.Count, IntervalMS: r.Interval.Milliseconds()}
	}
	return s
}

func (kind) Desired(cfg *config.Config, artifact func(config.Binary) *build.Artifact) (map[string]plan.Desired, error) {
	out := map[string]plan.Desired{}
	for _, t := range cfg.Tasks {
		art := artifact(t.Binary)
		if art == nil {
			return nil, fmt.Errorf("task %q: no artifact for %s", t.Name, plan.ArtifactKey(t.Binary))
		}
		s := Spec(t, art)
		out[t.Name] = plan.Desired{Hosts: t.Hosts, Blind: s.Blind(), Secrets: s.Secrets(), Spec: s, Version: s.Version, Artifact: s.Artifact}
	}
	return out, nil
}

// attrs are a release's attributes as a plan shows them, in the
// configuration's words. A value that is a secret is compared through
// the host's salted hash of it (plan.Attr.Secret); sensitive says which
// environment values are shown as "(sensitive)".
func attrs(s protocol.TaskSpec, sensitive map[string]bool) []plan.Attr {
	out := []plan.Attr{
		{Name: "binary", Value: plan.ShortHash(s.Artifact)},
		{Name: "version", Value: s.Version},
		{Name: "description", Value: s.Description},
	}
	switch {
	case s.SensitiveArgs:
		out = append(out, plan.Attr{Name: "args", Value: "(sensitive)", Sensitive: true, Secret: protocol.SecretArgs})
	case len(s.Args) > 0:
		b, _ := json.Marshal(s.Args)
		out = append(out, plan.Attr{Name: "args", Value: string(b)})
	}
	out = append(out, plan.Attr{Name: "account", Value: s.Account.Name})
	if s.Account.Password != "" || s.Account.PasswordSet {
		out = append(out, plan.Attr{Name: "account.password", Value: "(sensitive)", Sensitive: true, Secret: protocol.SecretPassword})
	}
	names := s.Env
	if names == nil {
		names = s.EnvSHA256
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, plan.Attr{Name: "env." + k, Value: s.Env[k], Sensitive: sensitive[k], Secret: protocol.SecretEnv(k)})
	}
	out = append(out,
		plan.Attr{Name: "work_dir", Value: s.Dir},
		plan.Attr{Name: "triggers", Value: Triggers(s.Triggers)},
		plan.Attr{Name: "time_limit", Value: duration(s.TimeLimitMS)},
		plan.Attr{Name: "if_running", Value: s.IfRunning},
		plan.Attr{Name: "enabled", Value: fmt.Sprint(!s.Disabled)},
	)
	if r := s.Retry; r != nil {
		out = append(out, plan.Attr{Name: "retry", Value: fmt.Sprintf("%d times, %s apart", r.Count, duration(r.IntervalMS))})
	}
	return out
}

// Triggers says when a task runs, in the configuration's words:
// "daily 02:00; every 15m".
func Triggers(ts []protocol.Trigger) string {
	var parts []string
	for _, t := range ts {
		switch t.Kind {
		case protocol.TriggerDaily:
			parts = append(parts, "daily "+t.At)
		case protocol.TriggerWeekly:
			parts = append(parts, fmt.Sprintf("weekly %s on %s", t.At, strings.Join(t.Days, ",")))
		case protocol.TriggerEvery:
			parts = append(parts, "every "+duration(t.EveryMS))
		case protocol.TriggerStartup:
			parts = append(parts, "at startup")
		case protocol.TriggerLogon:
			parts = append(parts, "at logon")
		}
	}
	return strings.Join(parts, "; ")
}

// duration writes milliseconds as the configuration does: 15m, 1h30m;
// "none" for no limit.
func duration(ms int64) string {
	if ms == 0 {
		return "none"
	}
	s := (time.Duration(ms) * time.Millisecond).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (kind) PlanHost(w *plan.HostWork) {
	wanted := map[string]string{}
	sensitive := map[string]map[string]bool{}
	for _, t := range w.Config.Tasks {
		if contains(t.Hosts, w.Host.Host) {
			wanted[t.Name] = t.Name
			sensitive[t.Name] = map[string]bool{}
			for k, v := range t.Env {
				sensitive[t.Name][k] = v.Sensitive
			}
		}
	}
	steps := plan.PlanResources(w, protocol.KindTask, wanted, func(name string, s protocol.TaskSpec) []plan.Attr { return attrs(s, sensitive[name]) })
	for _, step := range steps {
		if step.Action != plan.ActionDelete {
			step.Problems = plan.AccountProblems(w.Host.Host, "task", w.Config.Task(step.Service).Account.Name, w.Facts.Accounts)
		}
		if step.Action == plan.ActionCreate || changed(step, "binary") {
			w.Upload(w.Config.Task(step.Service).Binary, step.Service)
		}
	}
}

func changed(s *plan.Step, attr string) bool {
	for _, c := range s.Changes {
		if c.Attribute == attr {
			return true
		}
	}
	return false
}

func (kind) Rollouts(p *plan.Plan, _ *config.Config) []*plan.Rollout {
	return plan.KindRollouts(p, protocol.KindTask)
}

func (kind) Secrets(cfg *config.Config, name, host string) (map[string]string, bool) {
	t := cfg.Task(name)
	if t == nil || !contains(t.Hosts, host) {
		return nil, false
	}
	return Spec(t, &build.Artifact{}).Secrets(), true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
