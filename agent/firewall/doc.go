// Package firewall applies the firewall kind on a host: the inbound
// Windows Firewall rule a service or task opens, through the Windows
// Firewall COM API (INetFwPolicy2). It registers its handler with the
// agent; Rules is the host's firewall, faked in tests.
package firewall
