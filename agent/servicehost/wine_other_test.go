//go:build !windows

package servicehost

func onWine() bool { return false }
