// Package winrm is the WinRM transport: HTTPS by default, Basic or NTLM,
// with a shell kept open for the length of an agent session.
package winrm
