// Package eventlog plans the event log source of every native service:
// registered in the Application log before the service first starts, as
// kardianos/service does at install, and removed with the service.
// Import it for its registration with plan.
package eventlog
