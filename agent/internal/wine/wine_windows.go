//go:build windows

package wine

import "golang.org/x/sys/windows"

// Detected reports whether this process runs under Wine, detected by the
// wine_get_version export that only Wine's ntdll has.
func Detected() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
