//go:build !windows

package firewall

import "fmt"

// hostRules: a host without Windows has no firewall gsd can manage.
func hostRules() Rules { return noFirewall{} }

type noFirewall struct{}

func (noFirewall) Get(string) (Rule, bool, error) {
	return Rule{}, false, fmt.Errorf("%w: not Windows", ErrUnavailable)
}
func (noFirewall) Put(Rule) error      { return fmt.Errorf("%w: not Windows", ErrUnavailable) }
func (noFirewall) Remove(string) error { return fmt.Errorf("%w: not Windows", ErrUnavailable) }
