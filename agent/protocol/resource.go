package protocol

import (
	"encoding/json"
	"time"
)

// OpDelete removes a resource of any kind (DeleteArgs) and what gsd kept
// of it. OpDeleteService is the same for a service, kept for older
// clients.
const OpDelete = "delete"

// DeleteArgs names the resource to remove.
type DeleteArgs struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// TimeoutMS bounds stopping what runs first (a service).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// ResourceFacts is the actual state of one managed resource of a kind
// other than service (those are ServiceFacts): what plan compares with
// the configuration, in a form every kind shares.
type ResourceFacts struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Installed is false when the agent manages the resource but the host
	// no longer has it (someone removed it by hand).
	Installed bool `json:"installed"`
	// Drift names the parts of the resource that the host now holds
	// differently from how its current release put them, in the
	// configuration's words ("trigger", "ports"): changed by hand since.
	Drift []string `json:"drift,omitempty"`
	// LastApplied is the current release's spec, redacted, in the kind's
	// own form (a TaskSpec for KindTask...).
	LastApplied json.RawMessage `json:"last_applied,omitempty"`
	Current     *Release        `json:"current,omitempty"`
	Previous    *Release        `json:"previous,omitempty"`
	Releases    []Release       `json:"releases,omitempty"`
	// Secrets are salted hashes of the current release's secret values,
	// by key (see SecretKeys), so that plan can tell a changed secret
	// without the host sending one.
	Secrets map[string]PasswordHash `json:"secrets,omitempty"`
	// Sources maps a part to where its reported value came from when the
	// host itself could not report it (SourceAgentState); Unreadable maps
	// it to why.
	Sources    map[string]string `json:"sources,omitempty"`
	Unreadable map[string]string `json:"unreadable,omitempty"`
	// Status is what changes without anyone deploying (a task's last
	// run), for gsd status; a saved plan's fingerprint leaves it out.
	Status *ResourceStatus `json:"status,omitempty"`
}

// ResourceStatus is how a resource is doing now, in words every kind can
// fill: a state and named details.
type ResourceStatus struct {
	// State is the kind's word for it: "ready", "running" or "disabled"
	// for a task, "enabled" for a firewall rule, "registered" for an
	// event source.
	State   string         `json:"state"`
	Details []StatusDetail `json:"details,omitempty"`
}

// StatusDetail is one named fact about a resource's status: a value, a
// time, or both ("last run" at a time with the value "exit code 0").
type StatusDetail struct {
	Name  string    `json:"name"`
	Value string    `json:"value,omitempty"`
	Time  time.Time `json:"time,omitzero"`
}

// Resource finds a resource's facts by kind and name, or nil.
func (f *Facts) Resource(kind, name string) *ResourceFacts {
	for i := range f.Resources {
		if f.Resources[i].Kind == kind && f.Resources[i].Name == name {
			return &f.Resources[i]
		}
	}
	return nil
}
