// Package winrm is the WinRM transport: WinRS shells over plain HTTP with
// every message sealed with the session key by default (what a stock
// Windows Server takes), or over HTTPS (verified against the system pool
// or ca_cert, the handshake bound to the certificate), authenticated with
// NTLM, Kerberos (from a ticket cache, a keytab or a password), Negotiate's
// choice between them, or Basic. Stdin is streamed in Sends sized to the
// host's MaxEnvelopeSize, and one shell is kept for the length of an agent
// session. It uses masterzen/winrm's message builders and parsers under
// its own HTTP layer, which keeps each security context on its connection
// and lets every failure be reported precisely.
package winrm
