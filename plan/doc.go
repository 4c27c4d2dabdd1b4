// Package plan compares the desired configuration with the facts read
// from each host and returns typed steps per host (create, update in
// place, replace the binary, delete, no-op) with the attribute-level diff
// and the reason for every restart. Make is pure: no I/O, no clock, so
// every diff rule is a table test. A plan holds no secret.
package plan
