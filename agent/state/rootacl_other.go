//go:build !windows

package state

import "os"

// SecureRoot creates root if needed and makes it accessible to its owner
// only, the POSIX counterpart of the Windows DACL (used by the tests and by
// agents run outside Windows). gap is always empty here.
func SecureRoot(root string) (gap string, err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	return "", os.Chmod(root, 0o700)
}

// GrantServiceAccess has no POSIX counterpart: services there are test
// fakes run by the agent's own user.
func GrantServiceAccess(Layout, string, string) (gap string, err error) { return "", nil }

// GrantFolderAccess creates dir; there is no account to grant to here.
func GrantFolderAccess(dir, account string, modify bool) (gap string, err error) {
	return "", os.MkdirAll(dir, 0o755)
}
