package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Firewall protocols and profiles.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// FirewallProfiles are the Windows Firewall profiles a rule may apply in.
var FirewallProfiles = []string{"domain", "private", "public"}

// Firewall is the inbound rule a service or task opens: one rule named
// after it, allowing Ports over Protocol from RemoteAddresses in
// Profiles.
type Firewall struct {
	Protocol        string
	Ports           []string // "8080" or a range "9000-9010", in the order given
	Profiles        []string // sorted; default all three
	RemoteAddresses []string // "*" (any, the default), addresses, subnets, ranges or keywords
}

type firewallShape struct {
	Ports           hcl.Expression `hcl:"ports"`
	Protocol        hcl.Expression `hcl:"protocol,optional"`
	Profiles        hcl.Expression `hcl:"profiles,optional"`
	RemoteAddresses hcl.Expression `hcl:"remote_addresses,optional"`
	DefRange        hcl.Range      `hcl:",def_range"`
}

// remoteKeywords are the names Windows Firewall accepts for a remote
// address scope, in its own spelling.
var remoteKeywords = map[string]string{
	"*": "*", "any": "*", "localsubnet": "LocalSubnet", "dns": "DNS", "dhcp": "DHCP", "wins": "WINS",
	"defaultgateway": "DefaultGateway", "internet": "Internet", "intranet": "Intranet",
}

// firewallBlock decodes the firewall block of a service or task (owner
// says which, for messages), or nil without one.
func firewallBlock(ev *evaluator, blocks []*firewallShape, owner string) *Firewall {
	fb, ok := onlyOne(ev, blocks, func(f *firewallShape) hcl.Range { return f.DefRange }, owner, "firewall")
	if !ok {
		return nil
	}
	what := func(attr string) string { return fmt.Sprintf("%s firewall %s", owner, attr) }
	fw := &Firewall{Protocol: ev.oneOf(fb.Protocol, what("protocol"), ProtocolTCP, ProtocolTCP, ProtocolUDP)}
	ev.required(fb.Ports, owner+" firewall", "ports")
	quiet := func(from, unknowns int) bool { return countErrors(ev.diags) == from && ev.unknowns == unknowns }
	errs, unknowns := countErrors(ev.diags), ev.unknowns
	seen := map[string]bool{}
	for _, p := range ev.strs(fb.Ports, what("ports")) {
		norm, err := portRange(p)
		if err != nil {
			ev.errorf(fb.Ports.Range(), "Invalid port", "%s: %s.", what("ports"), err)
			continue
		}
		if seen[norm] {
			ev.errorf(fb.Ports.Range(), "Port listed twice", "%s lists %s more than once.", what("ports"), norm)
			continue
		}
		seen[norm] = true
		fw.Ports = append(fw.Ports, norm)
	}
	if !absent(fb.Ports) && len(fw.Ports) == 0 && quiet(errs, unknowns) {
		ev.errorf(fb.Ports.Range(), "No ports", "%s is empty; list the ports the rule opens, such as [8080].", what("ports"))
	}
	fw.Profiles = FirewallProfiles
	if !absent(fb.Profiles) {
		errs, unknowns := countErrors(ev.diags), ev.unknowns
		fw.Profiles = nil
		for _, p := range ev.strs(fb.Profiles, what("profiles")) {
			p = strings.ToLower(p)
			switch {
			case !slices.Contains(FirewallProfiles, p):
				ev.errorf(fb.Profiles.Range(), "Invalid firewall profile", "%s: %q is not a profile; use %s.", what("profiles"), p, quoteList(FirewallProfiles))
			case slices.Contains(fw.Profiles, p):
				ev.errorf(fb.Profiles.Range(), "Profile listed twice", "%s lists %q more than once.", what("profiles"), p)
			default:
				fw.Profiles = append(fw.Profiles, p)
			}
		}
		slices.Sort(fw.Profiles)
		if len(fw.Profiles) == 0 && quiet(errs, unknowns) {
			ev.errorf(fb.Profiles.Range(), "No firewall profiles", "%s is empty, so the rule would never apply; leave it out for all profiles.", what("profiles"))
		}
	}
	fw.RemoteAddresses = []string{"*"}
	if !absent(fb.RemoteAddresses) {
		errs, unknowns := countErrors(ev.diags), ev.unknowns
		fw.RemoteAddresses = nil
		for _, a := range ev.strs(fb.RemoteAddresses, what("remote_addresses")) {
			norm, err := remoteAddress(a)
			if err != nil {
				ev.errorf(fb.RemoteAddresses.Range(), "Invalid remote address", "%s: %s.", what("remote_addresses"), err)
				continue
			}
			fw.RemoteAddresses = append(fw.RemoteAddresses, norm)
		}
		if slices.Contains(fw.RemoteAddresses, "*") && len(fw.RemoteAddresses) > 1 {
			ev.errorf(fb.RemoteAddresses.Range(), "Any address among others", "%s has \"any\" beside other addresses, which it already includes; keep one.", what("remote_addresses"))
		}
		if len(fw.RemoteAddresses) == 0 && quiet(errs, unknowns) {
			ev.errorf(fb.RemoteAddresses.Range(), "No remote addresses", "%s is empty, so the rule would let no one in; leave it out for any address.", what("remote_addresses"))
		}
	}
	return fw
}

// portRange checks a port ("8080") or a range ("9000-9010").
func portRange(s string) (string, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, errA := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var errB error
	if isRange {
		b, errB = strconv.Atoi(strings.TrimSpace(hi))
	}
	switch {
	case errA != nil || errB != nil:
		return "", fmt.Errorf("%q is not a port or a range of ports such as 8080 or \"9000-9010\"", s)
	case a < 1 || b > 65535:
		return "", fmt.Errorf("%q is outside 1 to 65535", s)
	case b < a:
		return "", fmt.Errorf("%q ends before it starts", s)
	case a == b:
		return strconv.Itoa(a), nil
	}
	return fmt.Sprintf("%d-%d", a, b), nil
}

// remoteAddress checks one remote address scope as Windows Firewall
// takes it: an address, a subnet (10.0.0.0/8), a range (a-b) or a
// keyword such as LocalSubnet.
func remoteAddress(s string) (string, error) {
	if k, ok := remoteKeywords[strings.ToLower(s)]; ok {
		return k, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), nil
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, errA := netip.ParseAddr(lo)
		b, errB := netip.ParseAddr(hi)
		if errA == nil && errB == nil && a.Is4() == b.Is4() && !b.Less(a) {
			return a.String() + "-" + b.String(), nil
		}
	}
	return "", fmt.Errorf("%q is not an address, a subnet such as \"10.0.0.0/8\", a range such as \"10.0.0.1-10.0.0.9\", or one of \"any\", \"LocalSubnet\", \"DNS\", \"DHCP\", \"WINS\", \"DefaultGateway\", \"Internet\", \"Intranet\"", s)
}
