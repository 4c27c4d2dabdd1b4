// Package build cross-compiles the build blocks of a configuration and
// caches the artifacts by their inputs, so unchanged inputs never rebuild.
package build
