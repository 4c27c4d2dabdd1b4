// Package firewall plans the inbound Windows Firewall rule a service or
// a scheduled task opens with its firewall block: one rule named after
// it, created before it starts and removed with it. Import it for its
// registration with plan.
package firewall
