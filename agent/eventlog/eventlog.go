package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/releases"
	"github.com/gsd-deploy/gsd/agent/state"
)

// Sources are the host's event log sources: the keys under
// HKLM\SYSTEM\CurrentControlSet\Services\EventLog\<log>\<source>.
type Sources interface {
	// Lookup returns the log a source is registered in, "" if none.
	Lookup(source string) (log string, err error)
	// Register registers source in log with EventCreate.exe's messages,
	// as kardianos/service and eventcreate do.
	Register(log, source string) error
	// Remove removes source from log.
	Remove(log, source string) error
}

// ErrUnavailable is wrapped by Sources and Logs on a host without a
// Windows event log.
var ErrUnavailable = errors.New("this host has no Windows event log")

func init() {
	agent.RegisterKind(protocol.KindEventLog, func(agent.Host) agent.Handler {
		return &Handler{Sources: hostSources(), Logs: hostLogs()}
	})
}

// Handler applies event log sources and reads native services' entries.
type Handler struct {
	Sources Sources
	Logs    Logs
}

// recorded is what the agent keeps of a source: the log gsd registered
// it in; or that it was there before gsd (and is left as it is); or, on
// a host without an event log, why it could not be registered.
type recorded struct {
	Log         string `json:"log"`
	Preexisting bool   `json:"preexisting,omitempty"`
	Unavailable string `json:"unavailable,omitempty"`
}

// logNameRE is what gsd accepts as an event log's name: it becomes a
// registry key, and travels in cursors.
var logNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$`)

// Check validates a source before it is stored.
func (h *Handler) Check(name string, raw json.RawMessage, secrets map[string]string) (releases.Record, error) {
	var spec protocol.EventLogSpec
	if err := protocol.DecodeArgs(protocol.Request{Op: protocol.OpStageRelease, Args: raw}, &spec); err != nil {
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "eventlog %s: %v", name, err)
	}
	switch {
	case spec.Name != name:
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "eventlog %s: the spec names source %q", name, spec.Name)
	case !logNameRE.MatchString(spec.Log):
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "eventlog %s: %q is not an event log's name", name, spec.Log)
	case len(secrets) > 0:
		return releases.Record{}, agent.Errorf(protocol.CodeBadRequest, "eventlog %s: an event source has no secrets", name)
	}
	b, err := json.Marshal(spec)
	return releases.Record{Spec: b}, err
}

// Apply registers the source. One registered before gsd managed it (by
// the service's own installer, say) is left as it is, and later left in
// place when the service goes.
func (h *Handler) Apply(name string, rec releases.Record, effect string, prev *state.Resource, emit func(string)) (json.RawMessage, map[string]string, error) {
	var spec protocol.EventLogSpec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return nil, nil, err
	}
	var was recorded
	if prev != nil {
		json.Unmarshal(prev.Recorded, &was)
	}
	out := recorded{Log: spec.Log}
	log, err := h.Sources.Lookup(name)
	switch {
	case errors.Is(err, ErrUnavailable):
		out.Unavailable = err.Error()
		b, _ := json.Marshal(out)
		return b, map[string]string{"source": "not registered: " + err.Error()}, nil
	case err != nil:
		return nil, nil, err
	case log != "" && (prev == nil || was.Preexisting):
		out.Log, out.Preexisting = log, true
		if prev == nil {
			emit(fmt.Sprintf("eventlog %s: the source is registered in the %s log already; gsd leaves it as it is", name, log))
		}
	case log != "" && !strings.EqualFold(log, spec.Log):
		if err := h.Sources.Remove(log, name); err != nil {
			return nil, nil, fmt.Errorf("moving the source out of the %s log: %w", log, err)
		}
		fallthrough
	case log == "":
		if err := h.Sources.Register(spec.Log, name); err != nil {
			return nil, nil, fmt.Errorf("registering the source in the %s log: %w", spec.Log, err)
		}
	}
	b, err := json.Marshal(out)
	return b, nil, err
}

// Remove unregisters a source gsd registered.
func (h *Handler) Remove(name string, r *state.Resource, emit func(string)) error {
	var rec recorded
	json.Unmarshal(r.Recorded, &rec)
	switch {
	case rec.Unavailable != "":
		return nil
	case rec.Preexisting:
		emit(fmt.Sprintf("eventlog %s: the source was registered before gsd; it stays", name))
		return nil
	}
	log, err := h.Sources.Lookup(name)
	if err != nil || log == "" {
		return err
	}
	return h.Sources.Remove(log, name)
}

// Observe reports where the source is registered.
func (h *Handler) Observe(name string, r *state.Resource) protocol.ResourceFacts {
	var rec recorded
	json.Unmarshal(r.Recorded, &rec)
	f := protocol.ResourceFacts{Installed: true}
	if rec.Unavailable != "" {
		f.Sources = map[string]string{"source": protocol.SourceAgentState}
		f.Unreadable = map[string]string{"source": rec.Unavailable}
		f.Status = &protocol.ResourceStatus{State: "recorded", Details: []protocol.StatusDetail{{Name: "log", Value: rec.Log}}}
		return f
	}
	log, err := h.Sources.Lookup(name)
	switch {
	case err != nil:
		f.Unreadable = map[string]string{"source": err.Error()}
		return f
	case log == "":
		f.Installed = false
		return f
	case !strings.EqualFold(log, rec.Log):
		f.Drift = []string{"log"}
	}
	f.Status = &protocol.ResourceStatus{State: "registered"}
	if rec.Preexisting {
		f.Status.Details = []protocol.StatusDetail{{Name: "registered", Value: "in the " + log + " log before gsd, left as it is"}}
	}
	return f
}
