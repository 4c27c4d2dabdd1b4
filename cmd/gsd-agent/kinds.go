package main

// The kinds of resource the agent applies besides services register
// their handlers with the agent (see agent.Handler).
import (
	_ "github.com/gsd-deploy/gsd/agent/eventlog"
	_ "github.com/gsd-deploy/gsd/agent/firewall"
	_ "github.com/gsd-deploy/gsd/agent/task"
)
