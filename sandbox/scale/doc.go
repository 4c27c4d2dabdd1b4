// Package scale simulates many Windows hosts that cost almost nothing, for
// measuring gsd's own cost per host (make bench-scale): each host is the
// sandbox's WS-Management server (with its NTLM) on a loopback port,
// reached the default way (HTTP, every message sealed) or over HTTPS, an
// injected delay on every answer, and, behind it, the real agent logic
// over an in-memory service manager instead of Wine.
package scale
