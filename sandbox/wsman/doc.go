// Package wsman decodes and encodes the SOAP 1.2 envelopes of WS-Management
// as the Windows WinRM service speaks them: addressing headers, selectors,
// options, timeouts and envelope sizes in, responses and WSManFault faults
// out. The decoder is defensive because it faces the network: no DTDs, no
// entities, bounded depth and element count.
package wsman
