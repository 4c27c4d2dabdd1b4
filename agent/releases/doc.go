// Package releases keeps the immutable releases of a host's resources
// under C:\ProgramData\gsd\releases\<id>\: the redacted spec
// (release.json), every managed file's bytes by SHA-256 (files\), and the
// secret values sealed for the machine (secrets.sealed). A release is
// content-addressed: its id is a hash of all of that, secrets included
// through a keyed hash whose key never leaves the host, so staging the
// same release twice yields the same id and rollback returns to exactly
// what ran.
package releases
