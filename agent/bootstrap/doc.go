// Package bootstrap defines the only PowerShell gsd ever sends: a short
// script that streams its stdin to a file, verifies the SHA-256, and
// renames the file into place, so the agent can be installed on a host
// that has nothing but WinRM or OpenSSH. Transports send it; the sandbox
// recognises exactly it and performs it natively, since Wine has no
// working PowerShell.
package bootstrap
