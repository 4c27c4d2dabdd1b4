// Package winecmd runs Windows command lines for real under Wine, in one
// sandbox host's WINEPREFIX, with the exact command line the client sent.
// It is shared by the WinRS server and the SSH forced command, and it is
// where the one emulated command lives: gsd's PowerShell bootstrap (see
// package bootstrap), performed natively because Wine has no PowerShell.
package winecmd
