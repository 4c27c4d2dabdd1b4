package views

import (
	"encoding/json"
	"io"
)

// HostsCheckFormatVersion is the version of gsd hosts check -json.
const HostsCheckFormatVersion = "1.0"

// HostsCheck is the result of gsd hosts check.
type HostsCheck struct {
	FormatVersion string      `json:"format_version"`
	Hosts         []HostCheck `json:"hosts"`
	Failed        int         `json:"failed"`
}

// HostCheck is one host's: reached or not, and what its agent said.
type HostCheck struct {
	Host            string `json:"host"`
	Address         string `json:"address"`
	Transport       string `json:"transport"`
	OK              bool   `json:"ok"`
	Error           string `json:"error,omitempty"`
	Agent           string `json:"agent,omitempty"`
	AgentInstalled  bool   `json:"agent_installed"`
	Machine         string `json:"machine,omitempty"`
	ManagedServices int    `json:"managed_services"`
	LockedBy        string `json:"locked_by,omitempty"`
}

// HostsCheckJSON writes hc as one JSON document.
func HostsCheckJSON(w io.Writer, hc *HostsCheck) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(hc)
}
