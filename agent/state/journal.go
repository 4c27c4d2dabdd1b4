package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Journal is an activation in progress. It is written before anything on
// the host changes and removed once the resource runs one whole release
// again, so after a crash the next agent to take the lock knows what was
// under way and finishes it (To) or returns to what ran before (From).
type Journal struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	// From is the release active before ("" for a new resource), To the
	// one being activated.
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
	Effect string `json:"effect"`
	// OnInterrupt is protocol.OnFailureRollback or OnFailureComplete.
	OnInterrupt string `json:"on_interrupt"`
	// WasRunning: the service ran before the activation began, so it must
	// run after it, whichever release it ends on.
	WasRunning bool `json:"was_running"`
	// RollingBack is set once the activation failed and the agent began
	// returning to From.
	RollingBack bool `json:"rolling_back,omitempty"`
	// By is the operator the lock was taken for.
	By string `json:"by,omitempty"`
}

// Summary is the journal as shown in facts.
func (j *Journal) Summary() *protocol.JournalSummary {
	return &protocol.JournalSummary{ID: j.ID, Started: j.Started, Kind: j.Kind, Name: j.Name, From: j.From, To: j.To, OnInterrupt: j.OnInterrupt}
}

// LoadJournal returns the pending journal, or nil if none.
func LoadJournal(l Layout) (*Journal, error) {
	b, err := atomicfile.ReadFile(l.JournalFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", l.JournalFile(), err)
	}
	return &j, nil
}

// Save records the journal durably.
func (j *Journal) Save(l Layout) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.JournalFile(), b)
}

// FinishJournal removes the journal once the activation completed or was
// reverted.
func FinishJournal(l Layout) error {
	err := os.Remove(l.JournalFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
