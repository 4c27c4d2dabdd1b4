package protocol

// KindFirewall is an inbound Windows Firewall rule that a service or a
// scheduled task opens, named after it.
const KindFirewall = "firewall"

// FirewallSpec is one release of a firewall rule: the rule allows
// inbound Ports over Protocol from RemoteAddresses in Profiles. It holds
// no secret.
type FirewallSpec struct {
	// Name is the rule's name: the service's or task's, whose address
	// For gives ("service.api").
	Name string `json:"name"`
	For  string `json:"for"`
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// Ports are ports ("8080") and ranges ("9000-9010").
	Ports []string `json:"ports"`
	// Profiles are "domain", "private" and "public", sorted.
	Profiles []string `json:"profiles"`
	// RemoteAddresses are "*" (any), addresses, subnets, ranges or
	// Windows Firewall's keywords ("LocalSubnet").
	RemoteAddresses []string `json:"remote_addresses"`
}
