// Package ssh is the SSH transport for Windows' OpenSSH server: the host
// key is checked against known_hosts (by default ~/.ssh/known_hosts) or a
// pinned host_key, and an unknown or changed key stops the connection
// with its fingerprint and how to trust it. Keys come from a file or
// ssh-agent; a password is only sent when configured.
package ssh
