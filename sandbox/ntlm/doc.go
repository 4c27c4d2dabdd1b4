// Package ntlm is the server side of NTLMv2 over HTTP, as a stand-alone
// Windows host performs it for WinRM: it issues CHALLENGE messages,
// verifies AUTHENTICATE messages (MIC and channel bindings included)
// against the host's local accounts, and signs and seals the messages of
// an established context for WinRM message encryption. The client
// libraries gsd and its tests use have only the client side, so the
// server lives here, tested against bodgit/ntlmssp and pywinrm's
// ntlm-auth.
package ntlm
