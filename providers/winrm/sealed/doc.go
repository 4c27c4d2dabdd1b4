// Package sealed frames WinRM messages encrypted with an NTLM session key
// for plain HTTP ([MS-WSMV] 2.2.9.1.1): a two-part multipart/encrypted
// body whose second part is the signature and the sealed SOAP envelope.
// The framing is binary-safe and written by length, not by scanning the
// ciphertext for boundaries. Both gsd's client and the sandbox's server
// use it; pywinrm checks the server's side of it independently.
package sealed
