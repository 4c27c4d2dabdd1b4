// Package config is the gsd language: it parses *.hcl files, resolves
// variables, locals and functions, chooses an environment's hosts, and
// turns the HCL shape into a typed, validated model in which a service
// that reads each.host has its values per host. Every problem is a
// diagnostic that points at its source.
package config
