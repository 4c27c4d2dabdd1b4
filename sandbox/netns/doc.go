// Package netns gives each sandbox host its own Linux network namespace:
// a bridge in the root namespace, and per host a namespace joined to it by
// a veth pair, with its own address. It drives iproute2 (`ip`), which is
// what an operator would use to inspect or clean up by hand.
package netns
