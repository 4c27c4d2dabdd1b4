package main

// The kinds of resource gsd plans besides services register themselves
// with plan (see plan.Kind).
import (
	_ "github.com/gsd-deploy/gsd/plan/eventlog"
	_ "github.com/gsd-deploy/gsd/plan/firewall"
	_ "github.com/gsd-deploy/gsd/plan/task"
)
