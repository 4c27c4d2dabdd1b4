// Command gsd-agent is the on-host half of gsd: run without arguments (or
// with "serve") it speaks the JSON-lines protocol of agent/protocol on
// stdin/stdout; "service-host" is how the service manager starts it to host
// a wrapped console program; "version" prints its version.
package main
