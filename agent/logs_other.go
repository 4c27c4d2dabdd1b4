//go:build !windows

package agent

import (
	"fmt"
	"os"
	"syscall"
)

// openLog opens a log file for reading; POSIX never blocks the service
// host's rotation (a rename) for an open reader.
func openLog(path string) (*os.File, error) { return os.Open(path) }

// logFileID names the file behind f by device and inode, which a rename
// keeps and a new file under the old name does not have. An inode can be
// reused once its file is removed; the agent runs on Windows, whose file
// index carries a sequence number against that, and follow's size check
// catches most reuse here.
func logFileID(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", nil
	}
	return fmt.Sprintf("%x-%x", uint64(st.Dev), uint64(st.Ino)), nil
}
