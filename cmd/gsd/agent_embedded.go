//go:build embedagent

package main

import _ "embed"

// A release build embeds the agent: make release-build puts
// gsd-agent.exe here first.
//
//go:embed gsd-agent.exe
var embeddedAgentFile []byte

func init() { embeddedAgent = embeddedAgentFile }
