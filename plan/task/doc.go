// Package task plans scheduled tasks: a Go program the Task Scheduler
// runs on its triggers, released as a service is (binary, arguments,
// account, environment) and changed in place, since nothing runs between
// its runs. Import it for its registration with plan.
package task
