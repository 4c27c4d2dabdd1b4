//go:build windows

package servicehost

import "golang.org/x/sys/windows"

// onWine mirrors scm.IsWine, which this package cannot import.
func onWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
