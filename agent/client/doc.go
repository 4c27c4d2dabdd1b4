// Package client is the gsd side of the agent protocol: it reads the
// agent's hello, sends requests with fresh ids, collects each request's
// progress events and final result, and streams artifacts zstd-compressed in
// binary frames.
// Transports (WinRM, SSH, a local process) only supply the two streams.
package client
