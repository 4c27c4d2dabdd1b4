//go:build windows

package agent

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// openLog opens a log file for reading with FILE_SHARE_DELETE: os.Open
// does not share delete, and the service host could not rotate (rename)
// the file while gsd logs -f has it open.
func openLog(path string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// logFileID names the file behind f by volume and file index. Creation
// times would not do: NTFS "tunnels" a file's creation time to a new file
// created under its name within seconds of a rename, which is exactly
// what rotation does.
func logFileID(f *os.File) (string, error) {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &info); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x-%x%08x", info.VolumeSerialNumber, info.FileIndexHigh, info.FileIndexLow), nil
}
