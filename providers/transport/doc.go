// Package transport is what the WinRM and SSH transports share: the
// Transport and Process interfaces, Run on top of them, and the kinds of
// failure (unreachable, timeout, authentication, trust, broken
// connection) with messages that tell a user what to do.
package transport
