package views

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pterm/pterm"
)

// Releases is what gsd releases shows: the releases each host keeps of one
// service, newest first, and which one is active.
type Releases struct {
	Address   string          `json:"address"`
	CheckedAt time.Time       `json:"checked_at"`
	Hosts     []*HostReleases `json:"hosts"`
}

// HostReleases are one host's kept releases, or why they could not be read.
type HostReleases struct {
	Host     string         `json:"host"`
	Error    string         `json:"error,omitempty"`
	Releases []*KeptRelease `json:"releases"`
}

// KeptRelease is one release a host keeps for rollback.
type KeptRelease struct {
	ID        string    `json:"id"`
	Version   string    `json:"version,omitempty"`
	Artifact  string    `json:"artifact"`
	Activated time.Time `json:"activated,omitzero"`
	By        string    `json:"by,omitempty"`
	// Changes are the attributes that differ from the release before it;
	// empty for the first release on the host.
	Changes []string `json:"changes"`
	Active  bool     `json:"active"`
}

// ReleasesJSON writes the releases as indented JSON.
func ReleasesJSON(w io.Writer, r *Releases) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReleasesTable writes one table per host.
func ReleasesTable(w io.Writer, r *Releases, color bool) error {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Releases of %s\n\n", paint(pterm.Bold, r.Address))
	for _, h := range r.Hosts {
		fmt.Fprintf(&b, "%s\n", paint(pterm.Bold, "host."+h.Host))
		switch {
		case h.Error != "":
			fmt.Fprintf(&b, "  %s %s\n\n", paint(pterm.FgRed, "error:"), h.Error)
			continue
		case len(h.Releases) == 0:
			b.WriteString("  not deployed here\n\n")
			continue
		}
		rows := [][]cell{{colorCell(pterm.Bold, ""), colorCell(pterm.Bold, "RELEASE"), colorCell(pterm.Bold, "VERSION"),
			colorCell(pterm.Bold, "ACTIVATED"), colorCell(pterm.Bold, "BY"), colorCell(pterm.Bold, "CHANGED FROM THE ONE BEFORE")}}
		for _, k := range h.Releases {
			mark, id := plainCell(""), plainCell(orDash(k.ID))
			if k.Active {
				mark, id = colorCell(pterm.FgGreen, "active"), colorCell(pterm.FgGreen, orDash(k.ID))
			}
			changes := strings.Join(k.Changes, ", ")
			if len(k.Changes) == 0 {
				changes = "(first here)"
			}
			rows = append(rows, []cell{mark, id, plainCell(orDash(k.Version)), plainCell(timeText(k.Activated, r.CheckedAt)),
				plainCell(orDash(k.By)), plainCell(changes)})
		}
		writeTable(&b, rows, paint)
		b.WriteByte('\n')
	}
	b.WriteString("Roll back with: gsd rollback " + r.Address + " [-host NAME] [-to VERSION]\n")
	_, err := io.WriteString(w, b.String())
	return err
}
