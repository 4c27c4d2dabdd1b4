// Package bootstrap defines the only PowerShell gsd ever sends: a short
// script that secures gsd's root folder, checks a file already there
// against its SHA-256, or else streams its stdin to the file, verifies the
// SHA-256 and renames it into place, so the agent can be installed on a
// host that has nothing but WinRM or OpenSSH, and is checked before it
// runs. Transports send it; the sandbox
// recognises exactly it and performs it natively, since Wine has no
// working PowerShell.
package bootstrap
