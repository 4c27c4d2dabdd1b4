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

// Journal is a journaled apply in progress. It is written before the first
// step and after every step, so after a crash the next run knows exactly
// which steps took effect.
type Journal struct {
	ID          string             `json:"id"`
	Started     time.Time          `json:"started"`
	Steps       []protocol.Request `json:"steps"`
	Rollback    []protocol.Request `json:"rollback,omitempty"`
	OnInterrupt string             `json:"on_interrupt"`
	// Done counts steps that completed.
	Done int `json:"done"`
	// RollingBack is set once rollback began; RolledBack counts its steps.
	RollingBack bool `json:"rolling_back,omitempty"`
	RolledBack  int  `json:"rolled_back,omitempty"`
}

// Summary is the journal as shown in facts.
func (j *Journal) Summary() *protocol.JournalSummary {
	return &protocol.JournalSummary{ID: j.ID, Started: j.Started, Steps: len(j.Steps), Done: j.Done, OnInterrupt: j.OnInterrupt}
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

// Save records the journal's progress durably.
func (j *Journal) Save(l Layout) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.JournalFile(), b)
}

// Finish removes the journal once the apply completed or was rolled back.
func FinishJournal(l Layout) error {
	err := os.Remove(l.JournalFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
