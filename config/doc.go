// Package config is the gsd language: it parses *.hcl files, resolves
// variables, locals and functions, and turns the HCL shape into a typed,
// validated model. Every problem is a diagnostic that points at its source.
package config
