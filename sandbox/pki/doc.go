// Package pki makes the certificates of a sandbox: one CA per sandbox and
// a certificate per host signed by it, for the host's address and name, so
// clients verify HTTPS the way they must against real hosts (ca_cert)
// instead of turning verification off.
package pki
