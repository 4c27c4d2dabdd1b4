//go:build !windows

package eventlog

import "fmt"

// Without Windows there is no event log.
func hostSources() Sources { return noEventLog{} }
func hostLogs() Logs       { return noEventLog{} }

type noEventLog struct{}

var errNotWindows = fmt.Errorf("%w: not Windows", ErrUnavailable)

func (noEventLog) Lookup(string) (string, error) { return "", errNotWindows }
func (noEventLog) Register(string, string) error { return errNotWindows }
func (noEventLog) Remove(string, string) error   { return errNotWindows }
func (noEventLog) Open(string) (LogReader, error) {
	return nil, errNotWindows
}
