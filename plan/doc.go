// Package plan compares desired state with the facts read from hosts and
// returns typed steps per host. Make is pure: no I/O, no clock.
package plan
