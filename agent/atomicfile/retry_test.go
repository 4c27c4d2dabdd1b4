package atomicfile

import (
	"errors"
	"testing"
	"time"
)

var errBusy = errors.New("busy")

func TestWithRetryRetriesTransientErrorsOnly(t *testing.T) {
	transient := func(err error) bool { return errors.Is(err, errBusy) }
	var slept []time.Duration
	sleep := func(d time.Duration) { slept = append(slept, d) }

	calls := 0
	err := withRetry(func() error {
		calls++
		if calls < 3 {
			return errBusy
		}
		return nil
	}, transient, sleep)
	if err != nil || calls != 3 || len(slept) != 2 {
		t.Fatalf("transient then ok: err %v, %d calls, %d sleeps", err, calls, len(slept))
	}

	calls, slept = 0, nil
	other := errors.New("denied for good")
	if err := withRetry(func() error { calls++; return other }, transient, sleep); err != other || calls != 1 || len(slept) != 0 {
		t.Fatalf("permanent error: %v after %d calls", err, calls)
	}

	calls, slept = 0, nil
	if err := withRetry(func() error { calls++; return errBusy }, transient, sleep); err != errBusy || calls != len(retryDelays)+1 {
		t.Fatalf("always busy: %v after %d calls, want %d", err, calls, len(retryDelays)+1)
	}
}
