// Package wine tells whether the agent runs under Wine, so code that meets
// one of Wine's known gaps can report it instead of failing. It lives apart
// from package scm because lower packages (state, servicehost) need it and
// scm imports the agent.
package wine
