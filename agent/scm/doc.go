// Package scm implements agent.ServiceControl on Windows' service control
// manager (x/sys/windows/svc/mgr and the raw Win32 calls beneath it). Each
// optional setting is written and read on its own, so a host that cannot
// handle one of them (Wine cannot report recovery actions or the delayed
// start flag) reports it as a gap instead of failing the whole operation.
// On other systems New returns a ServiceControl that refuses every call.
package scm
