// Package apply carries out a plan through each host's agent: it takes the
// host's lock, uploads every artifact first, then walks the steps in
// order. A failing host stops at its failing step without stopping the
// others. Progress reaches the user only through events; the engine never
// prints.
package apply
