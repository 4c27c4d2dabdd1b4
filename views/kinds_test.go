package views

// The goldens render plans as gsd makes them, with every kind of
// resource.
import (
	_ "github.com/gsd-deploy/gsd/plan/eventlog"
	_ "github.com/gsd-deploy/gsd/plan/firewall"
	_ "github.com/gsd-deploy/gsd/plan/task"
)
