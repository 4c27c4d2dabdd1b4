//go:build !unix

package winecmd

import "errors"

func (h *Host) startWine(line string, c Command) (Process, error) {
	return nil, errors.New("the gsd sandbox runs Windows commands under Wine, which needs Linux")
}

// Warm is unavailable without Wine.
func (h *Host) Warm() error { return errors.New("no Wine on this system") }

// ownerUID: there is no Unix owner without Unix.
func ownerUID(string) (int, bool) { return 0, false }
