// Command gsd deploys Go services to Windows hosts from HCL files:
// validate, fmt, init, plan, apply and destroy, status and releases,
// day-to-day operations (restart, stop, start, rollback, unlock), shell
// completion and the local sandbox.
package main
