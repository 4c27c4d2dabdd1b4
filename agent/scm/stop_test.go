package scm

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// scripted answers a stop request with the next error of errs and a query
// with the next state of states (the last one repeats).
type scripted struct {
	errs   []error
	states []uint32
	sent   int
	asked  int
}

func (s *scripted) send() error {
	err := s.errs[min(s.sent, len(s.errs)-1)]
	s.sent++
	return err
}

func (s *scripted) query() (uint32, error) {
	st := s.states[min(s.asked, len(s.states)-1)]
	s.asked++
	return st, nil
}

const stateRunning, stateStartPending = 4, 2

func TestRequestStop(t *testing.T) {
	later := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name     string
		errs     []error
		states   []uint32
		deadline time.Time
		wantErr  error
		wantSent int
	}{
		{"accepted", []error{nil}, []uint32{stateRunning}, later, nil, 1},
		{"already stopped", []error{errServiceNotActive}, []uint32{stateStopped}, later, nil, 1},
		{"pipe broke while the process exits", []error{errBrokenPipe}, []uint32{stateStopPending}, later, nil, 1},
		{"pipe broke, service still runs: sent again", []error{errBrokenPipe, nil}, []uint32{stateRunning}, later, nil, 2},
		{"starting services refuse controls until they run", []error{errCannotAcceptCtrl, errCannotAcceptCtrl, nil}, []uint32{stateStartPending}, later, nil, 3},
		{"access denied is final", []error{syscall.Errno(5)}, []uint32{stateRunning}, later, syscall.Errno(5), 1},
		{"retries end at the deadline", []error{errCannotAcceptCtrl}, []uint32{stateStartPending}, time.Now(), errCannotAcceptCtrl, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{errs: tc.errs, states: tc.states}
			err := requestStop(s.send, s.query, tc.deadline, func(time.Duration) {})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("requestStop = %v, want %v", err, tc.wantErr)
			}
			if s.sent != tc.wantSent {
				t.Errorf("stop sent %d times, want %d", s.sent, tc.wantSent)
			}
		})
	}
}
