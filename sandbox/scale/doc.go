// Package scale simulates many Windows hosts that cost almost nothing, for
// measuring gsd's own cost per host (make bench-scale): each host is the
// sandbox's WS-Management server (with its NTLM) on loopback HTTPS, an
// injected delay on every answer, and, behind it, the real agent logic
// over an in-memory service manager instead of Wine.
package scale
