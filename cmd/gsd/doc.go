// Command gsd deploys Go services to Windows hosts from HCL files:
// validate, fmt, init, plan, apply, status and the local sandbox.
package main
