// Package eventstest checks gsd's JSON event streams (gsd apply -json,
// gsd destroy -json) against their published schema,
// views/events.schema.json, for the tests of views and of the gsd
// command; gsd itself never imports it.
package eventstest
