//go:build unix

package winecmd

import (
	"os"
	"syscall"
)

// ownerUID is the Unix owner of path, which Wine shows as its owner.
func ownerUID(path string) (int, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
