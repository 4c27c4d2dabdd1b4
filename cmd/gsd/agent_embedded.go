//go:build embedagent

package main

import _ "embed"

// make build and make release put gsd-agent.exe here (built for
// windows/amd64 as agentBuild builds it) before building gsd with
// -tags embedagent; it is never committed.
//
//go:embed gsd-agent.exe
var embeddedAgentFile []byte

func init() { embeddedAgent = embeddedAgentFile }
