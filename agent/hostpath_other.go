//go:build !windows

package agent

import (
	"path/filepath"
	"strings"
)

// hostPath maps C:\x\y to <root>/drive_c/x/y outside Windows (the tests),
// as Wine maps drives into its prefix.
func hostPath(root, p string) string {
	if len(p) < 3 || p[1] != ':' {
		return filepath.Join(root, "drive_unknown", filepath.FromSlash(strings.ReplaceAll(p, `\`, "/")))
	}
	rest := strings.ReplaceAll(p[3:], `\`, "/")
	return filepath.Join(root, "drive_"+strings.ToLower(p[:1]), filepath.FromSlash(rest))
}
