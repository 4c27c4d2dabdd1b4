// Package eventlog applies the eventlog kind on a host, a native
// service's event log source (the registry key that makes the Windows
// event log know it), and reads a native service's entries back from the
// event log for gsd logs. It registers its handler with the agent.
package eventlog
