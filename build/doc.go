// Package build cross-compiles the build blocks of a configuration with
// the local Go toolchain (-trimpath, reproducible) and caches artifacts by
// a hash of every input, so unchanged inputs never rebuild. The artifact's
// SHA-256 is what a plan compares with the binary a host runs.
package build
