// Package agent is gsd-agent.exe's engine: it serves the JSON-lines protocol
// of package protocol on a pair of streams, keeps the host's state, staged
// artifacts, lock and journal under its root, and drives services through
// ServiceControl, which is Windows' service manager in production (package
// scm) and a small fake in the platform-neutral tests; the accounts'
// rights, its token's privileges and its folders' access go through
// package winsec, whose fake the tests' service manager consults as
// Windows' does.
package agent
