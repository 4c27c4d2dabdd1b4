package scm

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// The Win32 errors a stop request may meet while the service is between
// states. They are numbers here so that the retry rule is tested on every
// system; on Windows they equal the windows.ERROR_* values.
const (
	errBrokenPipe       = syscall.Errno(109)  // ERROR_BROKEN_PIPE
	errNoData           = syscall.Errno(232)  // ERROR_NO_DATA: the pipe is being closed
	errPipeNotConnected = syscall.Errno(233)  // ERROR_PIPE_NOT_CONNECTED
	errCannotAcceptCtrl = syscall.Errno(1061) // ERROR_SERVICE_CANNOT_ACCEPT_CTRL
	errServiceNotActive = syscall.Errno(1062) // ERROR_SERVICE_NOT_ACTIVE
	stopRetryInterval   = 200 * time.Millisecond
	stateStopped        = 1 // SERVICE_STOPPED
	stateStopPending    = 3 // SERVICE_STOP_PENDING
)

// stopRetryable reports whether a failed stop request is worth sending
// again. Windows refuses controls with 1061 while a service is starting
// or stopping, and a service manager talks to the service's process over
// a pipe that breaks while that process exits (Wine reports this as 109,
// 232 or 233). Each of these settles into a state the next query shows.
func stopRetryable(err error) bool {
	for _, e := range []syscall.Errno{errCannotAcceptCtrl, errBrokenPipe, errNoData, errPipeNotConnected} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// requestStop sends the stop control until the service manager takes it
// or the service is on its way down anyway, and gives up at deadline.
// send sends SERVICE_CONTROL_STOP; query returns the current state as a
// SERVICE_* number. The caller then waits for the stopped state.
func requestStop(send func() error, query func() (uint32, error), deadline time.Time, sleep func(time.Duration)) error {
	for {
		err := send()
		if err == nil || errors.Is(err, errServiceNotActive) {
			return nil
		}
		if st, qerr := query(); qerr == nil && (st == stateStopped || st == stateStopPending) {
			return nil
		}
		if !stopRetryable(err) || !time.Now().Before(deadline) {
			return fmt.Errorf("stop: %w", err)
		}
		sleep(stopRetryInterval)
	}
}
