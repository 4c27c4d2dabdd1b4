// Package state keeps the agent's on-host memory under its root directory
// (C:\ProgramData\gsd on Windows): state.json with the managed services and
// their releases, the lock file that names who is applying, and the journal
// that lets the next run finish or undo an apply that was interrupted.
// Everything here is plain files written atomically, so it works and is
// tested the same on Linux. Because an administrator's agent acts on what
// these files say, SecureRoot restricts the root to SYSTEM and
// Administrators first (owner-only on POSIX); environment values and
// passwords are never written here, only hashes of the former and a salted
// hash of the latter.
package state
