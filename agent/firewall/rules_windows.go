//go:build windows

package firewall

import (
	"fmt"
	"slices"

	ole "github.com/go-ole/go-ole"
	"github.com/go-ole/go-ole/oleutil"

	"github.com/gsd-deploy/gsd/agent/internal/com"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// hostRules is the Windows Firewall, through INetFwPolicy2.
func hostRules() Rules { return comRules{onWine: wine.Detected()} }

// comRules drives the Windows Firewall through its COM API
// (HNetCfg.FwPolicy2, HNetCfg.FWRule), by IDispatch. Under Wine, whose
// firewall is a stub, every failure is ErrUnavailable.
type comRules struct{ onWine bool }

// Values of the firewall's enumerations (icftypes.h).
const (
	netFwIPProtocolTCP = 6
	netFwIPProtocolUDP = 17
	netFwRuleDirIn     = 1
	netFwActionAllow   = 1
	netFwProfileDomain = 1
	netFwProfilePriv   = 2
	netFwProfilePublic = 4
	netFwProfileAll    = 0x7fffffff
	// hresultNotFound is HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), which
	// INetFwRules::Item returns for a name it does not hold.
	hresultNotFound = 0x80070002
)

// withRules runs fn with the policy's rule collection on a thread of its
// own with COM initialised.
func (c comRules) withRules(fn func(rules *ole.IDispatch) error) error {
	return c.wrap(com.Run(ole.COINIT_APARTMENTTHREADED, func() error { return policyRules(fn) }))
}

func policyRules(fn func(rules *ole.IDispatch) error) error {
	unk, err := oleutil.CreateObject("HNetCfg.FwPolicy2")
	if err != nil {
		return com.Error("HNetCfg.FwPolicy2", err)
	}
	defer unk.Release()
	policy, err := unk.QueryInterface(ole.IID_IDispatch)
	if err != nil {
		return err
	}
	defer policy.Release()
	v, err := oleutil.GetProperty(policy, "Rules")
	if err != nil {
		return com.Error("INetFwPolicy2.Rules", err)
	}
	rules := v.ToIDispatch()
	defer rules.Release()
	return fn(rules)
}

func (c comRules) wrap(err error) error {
	if err != nil && c.onWine {
		return fmt.Errorf("%w: Wine's firewall is a stub (%v)", ErrUnavailable, err)
	}
	return err
}

func item(rules *ole.IDispatch, name string) (*ole.IDispatch, bool, error) {
	v, err := oleutil.CallMethod(rules, "Item", name)
	if err != nil {
		if com.Code(err) == hresultNotFound {
			return nil, false, nil
		}
		return nil, false, com.Error(fmt.Sprintf("INetFwRules.Item(%q)", name), err)
	}
	return v.ToIDispatch(), true, nil
}

func (c comRules) Get(name string) (Rule, bool, error) {
	var r Rule
	var found bool
	err := c.withRules(func(rules *ole.IDispatch) error {
		d, ok, err := item(rules, name)
		if err != nil || !ok {
			return err
		}
		defer d.Release()
		found = true
		return read(d, &r)
	})
	return r, found, err
}

func read(d *ole.IDispatch, r *Rule) error {
	str := func(p string) (string, error) {
		v, err := oleutil.GetProperty(d, p)
		if err != nil {
			return "", com.Error("INetFwRule."+p, err)
		}
		s, _ := v.Value().(string)
		return s, nil
	}
	num := func(p string) (int64, error) {
		v, err := oleutil.GetProperty(d, p)
		if err != nil {
			return 0, com.Error("INetFwRule."+p, err)
		}
		return v.Val, nil
	}
	var err error
	if r.Name, err = str("Name"); err != nil {
		return err
	}
	if r.Description, err = str("Description"); err != nil {
		return err
	}
	if r.Group, err = str("Grouping"); err != nil {
		return err
	}
	if r.LocalPorts, err = str("LocalPorts"); err != nil {
		return err
	}
	if r.RemoteAddresses, err = str("RemoteAddresses"); err != nil {
		return err
	}
	proto, err := num("Protocol")
	if err != nil {
		return err
	}
	switch proto {
	case netFwIPProtocolTCP:
		r.Protocol = "tcp"
	case netFwIPProtocolUDP:
		r.Protocol = "udp"
	default:
		r.Protocol = fmt.Sprint(proto)
	}
	profiles, err := num("Profiles")
	if err != nil {
		return err
	}
	r.Profiles = profileList(int32(profiles))
	v, err := oleutil.GetProperty(d, "Enabled")
	if err != nil {
		return com.Error("INetFwRule.Enabled", err)
	}
	r.Enabled, _ = v.Value().(bool)
	return nil
}

func profileList(mask int32) []string {
	if mask == netFwProfileAll {
		return []string{"domain", "private", "public"}
	}
	var out []string
	for _, p := range []struct {
		bit  int32
		name string
	}{{netFwProfileDomain, "domain"}, {netFwProfilePriv, "private"}, {netFwProfilePublic, "public"}} {
		if mask&p.bit != 0 {
			out = append(out, p.name)
		}
	}
	return out
}

func profileMask(profiles []string) int32 {
	if len(profiles) == 3 {
		return netFwProfileAll
	}
	var m int32
	for _, p := range profiles {
		switch p {
		case "domain":
			m |= netFwProfileDomain
		case "private":
			m |= netFwProfilePriv
		case "public":
			m |= netFwProfilePublic
		}
	}
	return m
}

func (c comRules) Put(r Rule) error {
	return c.withRules(func(rules *ole.IDispatch) error {
		d, ok, err := item(rules, r.Name)
		if err != nil {
			return err
		}
		if !ok {
			unk, err := oleutil.CreateObject("HNetCfg.FWRule")
			if err != nil {
				return com.Error("HNetCfg.FWRule", err)
			}
			defer unk.Release()
			if d, err = unk.QueryInterface(ole.IID_IDispatch); err != nil {
				return err
			}
		}
		defer d.Release()
		proto := netFwIPProtocolTCP
		if r.Protocol == "udp" {
			proto = netFwIPProtocolUDP
		}
		// The protocol goes first: ports are refused on a rule whose
		// protocol has none.
		props := []struct {
			name  string
			value any
		}{
			{"Name", r.Name}, {"Description", r.Description}, {"Grouping", r.Group},
			{"Protocol", int32(proto)}, {"LocalPorts", r.LocalPorts}, {"RemoteAddresses", r.RemoteAddresses},
			{"Direction", int32(netFwRuleDirIn)}, {"Action", int32(netFwActionAllow)},
			{"Profiles", profileMask(r.Profiles)}, {"Enabled", r.Enabled},
		}
		for _, p := range props {
			if ok && slices.Contains([]string{"Name", "Direction"}, p.name) {
				continue // fixed once the rule exists
			}
			if _, err := oleutil.PutProperty(d, p.name, p.value); err != nil {
				return com.Error("INetFwRule."+p.name, err)
			}
		}
		if !ok {
			if _, err := oleutil.CallMethod(rules, "Add", d); err != nil {
				return com.Error("INetFwRules.Add", err)
			}
		}
		return nil
	})
}

func (c comRules) Remove(name string) error {
	return c.withRules(func(rules *ole.IDispatch) error {
		d, ok, err := item(rules, name)
		if err != nil || !ok {
			return err
		}
		d.Release()
		if _, err := oleutil.CallMethod(rules, "Remove", name); err != nil {
			return com.Error(fmt.Sprintf("INetFwRules.Remove(%q)", name), err)
		}
		return nil
	})
}
