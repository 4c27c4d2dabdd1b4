// Package kerberos is the Kerberos V5 GSS-API mechanism as WinRM uses it,
// on both sides of a connection: an initiator that gets a service ticket
// (from a ticket cache, a keytab or a password) and completes mutual
// authentication with the host's AP-REP, an acceptor for the sandbox's
// WS-Management server, and the sealing wrap tokens (RFC 4121 for AES,
// RFC 4757 for RC4-HMAC) that WinRM message encryption carries. It builds
// on gokrb5 for tickets and keys and adds what gokrb5 lacks.
package kerberos
