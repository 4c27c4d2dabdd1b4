// Package sandbox builds local Windows test hosts from real parts: a
// WS-Management server (package winrs) whose commands run under Wine in a
// per-host WINEPREFIX, each host in its own network namespace (or on its
// own loopback address without root), optionally with Debian's sshd. Up
// starts them in the background and writes sandbox.hcl; Down removes every
// process, namespace, prefix and file Up made, from the state file it
// keeps.
//
// One command is emulated rather than run: gsd's PowerShell bootstrap
// (package bootstrap), because Wine's powershell.exe is a stub. Any other
// PowerShell is refused with a fault that says so.
package sandbox
