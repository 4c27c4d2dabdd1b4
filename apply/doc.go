// Package apply carries out a plan through the on-host agent, batch by
// batch, and reports progress through hooks instead of printing.
package apply
