// Package providers is how gsd reaches a host: a Transport (WinRM or SSH)
// only starts commands with streams, and Host builds everything else on
// it once — installing and verifying gsd-agent.exe through the bootstrap,
// then speaking only to the agent, so both transports behave the same.
// Errors name the host and the step, and say what the user can do.
package providers
