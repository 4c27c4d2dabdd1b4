//go:build !windows

package task

import "fmt"

// hostScheduler: a host without Windows has no Task Scheduler.
func hostScheduler() Scheduler { return noScheduler{} }

type noScheduler struct{}

var errNotWindows = fmt.Errorf("%w: not Windows", ErrUnavailable)

func (noScheduler) Register(string, string, principal) error { return errNotWindows }
func (noScheduler) Get(string) (Observed, bool, error)       { return Observed{}, false, errNotWindows }
func (noScheduler) Delete(string) error                      { return errNotWindows }
