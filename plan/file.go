package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// fileMagic opens every saved plan, so gsd apply can tell a plan file
// from any other JSON.
const fileMagic = "gsd-plan"

type savedPlan struct {
	Magic string `json:"magic"`
	*Plan
}

// Write saves the plan for gsd apply FILE. The plan holds no secret, so
// neither does the file.
func Write(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(savedPlan{Magic: fileMagic, Plan: p})
}

// Read loads a saved plan, refusing files that are not plans or were
// written in a format this gsd does not know.
func Read(r io.Reader) (*Plan, error) {
	var sp savedPlan
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("not a gsd plan file: %w", err)
	}
	if sp.Magic != fileMagic || sp.Plan == nil {
		return nil, errors.New("not a gsd plan file")
	}
	if sp.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("the plan file has format version %d, but this gsd reads version %d; make the plan again with this gsd", sp.FormatVersion, FormatVersion)
	}
	return sp.Plan, nil
}

// Stale compares a saved plan's fingerprints with ones taken now and says
// in words what changed, or returns nil when the plan still holds. A plan
// made against other facts, other artifacts or another configuration must
// not be applied: its steps were computed from a world that is gone.
func Stale(saved, now Fingerprints) error {
	var why []string
	if saved.Config != now.Config {
		why = append(why, "the configuration (or a variable) changed")
	}
	why = append(why, mapDiff("artifact", saved.Artifacts, now.Artifacts, "was rebuilt with a different hash")...)
	why = append(why, mapDiff("host", saved.Facts, now.Facts, "changed since the plan was made")...)
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("the saved plan is stale: %s. Run gsd plan again", strings.Join(why, "; "))
}

func mapDiff(kind string, saved, now map[string]string, changed string) []string {
	keys := map[string]bool{}
	for k := range saved {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		a, inSaved := saved[k]
		b, inNow := now[k]
		switch {
		case !inNow:
			out = append(out, fmt.Sprintf("%s %s is no longer part of it", kind, k))
		case !inSaved:
			out = append(out, fmt.Sprintf("%s %s is new", kind, k))
		case a != b:
			out = append(out, fmt.Sprintf("%s %s %s", kind, k, changed))
		}
	}
	return out
}
