// Package state keeps the agent's on-host memory under its root directory
// (C:\ProgramData\gsd on Windows): state.json with the managed services and
// their releases, the lock file that names who is applying, and the journal
// that lets the next run finish or undo an apply that was interrupted.
// Everything here is plain files written atomically, so it works and is
// tested the same on Linux. Because an administrator's agent acts on what
// these files say, the agent restricts the root to SYSTEM and
// Administrators before it reads them (package winsec); environment values
// and passwords are never written here, only hashes of the former and a
// salted hash of the latter.
package state
