//go:build !windows

package winsec

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Local is this system's security. Outside Windows there is no account
// policy; a folder's owner and access list map to its Unix owner and mode
// bits, as Wine maps them: the agent's own user stands for
// Administrators, and a folder no one else may use (mode 0700) is one only
// SYSTEM and Administrators may.
func Local() Host { return posix{} }

type posix struct{}

func (posix) SID(account string) (string, error) {
	if sid, ok := BuiltinSID(account); ok {
		return sid, nil
	}
	return "", fmt.Errorf("looking up account %s: %w", account, ErrUnsupported)
}
func (posix) Rights(string) ([]string, error)  { return nil, ErrUnsupported }
func (posix) AddRight(string, string) error    { return ErrUnsupported }
func (posix) RemoveRight(string, string) error { return ErrUnsupported }
func (posix) ManagedAccount(string) (ManagedStatus, error) {
	return ManagedStatus{}, ErrUnsupported
}
func (posix) WithPrivileges(fn func() error, _ ...string) error { return fn() }

func (p posix) CreateFolder(path string, f Folder) error {
	if err := os.Mkdir(path, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ErrExist
		}
		return err
	}
	return p.SetFolder(path, f)
}

func (posix) Folder(path string) (Folder, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Folder{}, err
	}
	f := Folder{Owner: SIDAdministrators, Protected: true, Entries: RootFolder.Entries}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		f.Owner = fmt.Sprintf("S-1-22-1-%d", st.Uid) // a Unix user, as Samba names it
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.Protected = false
		f.Entries = append(f.Entries, Entry{SID: SIDUsers, Access: unixAccess(perm), Inherit: true})
	}
	return f, nil
}

func unixAccess(perm os.FileMode) Access {
	if perm&0o022 != 0 {
		return Modify
	}
	return ReadExecute
}

// SetFolder makes path private to the agent's user when f lets only SYSTEM
// and Administrators in; other entries cannot be expressed, and reading
// the folder back shows so.
func (posix) SetFolder(path string, f Folder) error {
	if f.Owner == SIDAdministrators {
		if err := os.Chown(path, os.Geteuid(), os.Getegid()); err != nil {
			return err
		}
	}
	for _, e := range f.Entries {
		if e.SID != SIDSystem && e.SID != SIDAdministrators {
			return nil
		}
	}
	return os.Chmod(path, 0o700)
}
