// Package winrm is the WinRM transport: WinRS shells over HTTPS by
// default (verified against the system pool or ca_cert), Basic or NTLM,
// with stdin streamed in Sends sized to the host's MaxEnvelopeSize and
// one shell kept for the length of an agent session. It uses
// masterzen/winrm's message builders and parsers under its own HTTP layer,
// which is what lets every failure be reported precisely.
package winrm
