// Package task applies the task kind on a host: a scheduled task in the
// Task Scheduler's \gsd folder, registered from its XML definition
// through the Task Scheduler 2.0 COM API (ITaskService), whose action
// runs the task's program through the agent itself (gsd-agent task-host),
// so its environment, logs and exit code are handled as a wrapped
// service's are. It registers its handler with the agent.
package task
