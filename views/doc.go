// Package views renders what gsd shows people and programs: diagnostics,
// plans, progress and status, in human (pterm) and JSON forms from the
// same data.
package views
