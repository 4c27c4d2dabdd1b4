// Package providers defines the Transport a host is reached through (run a
// command with stdin/stdout streams, upload a stream) and the host client
// that bootstraps the on-host agent over it.
package providers
