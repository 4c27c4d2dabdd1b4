// Package ssh is the SSH transport for Windows OpenSSH servers, with host
// keys checked against known_hosts or a pinned key.
package ssh
