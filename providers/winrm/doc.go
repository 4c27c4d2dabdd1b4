// Package winrm is the WinRM transport: WinRS shells over plain HTTP with
// every message sealed with the NTLM session key by default (what a stock
// Windows Server takes), or over HTTPS (verified against the system pool
// or ca_cert, NTLM bound to the certificate), with NTLM or Basic; stdin
// is streamed in Sends sized to the host's MaxEnvelopeSize, and one shell
// is kept for the length of an agent session. It uses masterzen/winrm's
// message builders and parsers under its own HTTP and NTLM layer, which
// is what keeps each NTLM context on one connection and lets every
// failure be reported precisely.
package winrm
