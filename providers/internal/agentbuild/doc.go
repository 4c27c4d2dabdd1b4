// Package agentbuild builds gsd-agent.exe for the transport tests: two
// builds that differ in their bytes, so a test can install one and then
// upgrade a host to the other.
package agentbuild
