// Package winrs is the sandbox's WS-Management server: the WinRS shell
// resource (Create, Command, Send, Receive, Signal, Delete) behind Basic
// and NTLM authentication, over HTTP and HTTPS, answering as the Windows
// WinRM service does, faults included. Commands run through a Runner
// (Wine in a sandbox host); fault injection can be switched on per server
// at run time for transport tests.
package winrs
