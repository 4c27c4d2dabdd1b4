// Package ntlm is the server side of NTLMv2 authentication over HTTP, as a
// stand-alone Windows host performs it for WinRM: it issues CHALLENGE
// messages and verifies AUTHENTICATE messages against one local account.
// Github.com/Azure/go-ntlmssp, which gsd's WinRM client uses, only has the
// client side, so the verifier lives here and is tested against both
// independent clients (go-ntlmssp and pywinrm's ntlm-auth).
package ntlm
