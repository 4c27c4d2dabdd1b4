package winsec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// RootFolder is what the agent's root gets: Administrators own it, and
// only SYSTEM and Administrators may use it, protected from the permissive
// access list of C:\ProgramData (on which Users may create folders), and
// inherited by everything below.
var RootFolder = Folder{Owner: SIDAdministrators, Protected: true, Entries: []Entry{
	{SID: SIDSystem, Access: FullControl, Inherit: true},
	{SID: SIDAdministrators, Access: FullControl, Inherit: true},
}}

// NotKeptError is a setting the host accepted and then did not show when
// read back, as Wine accepts access lists and account rights and keeps
// neither. The agent reports it as a gap on such a host; on Windows proper
// it is an error.
type NotKeptError struct {
	What string
	Got  string
}

func (e *NotKeptError) Error() string {
	return fmt.Sprintf("%s: the host accepted it but does not show it when read back (it shows %s)", e.What, e.Got)
}

// TrustedOwner reports whether sid may own the agent's folders: only
// Administrators and SYSTEM can change what an owner may do.
func TrustedOwner(sid string) bool { return sid == SIDAdministrators || sid == SIDSystem }

// SecureRoot makes sure root exists with RootFolder's owner and access
// list, and says what it had to repair. A new root is created with them in
// place, so there is no moment in which it is open to others. An existing
// one owned by anyone but Administrators or SYSTEM is taken back (with the
// privileges that needs, as its owner may have shut administrators out);
// any other access list is replaced. Then it is read back.
func SecureRoot(h Host, root string) (repairs []string, err error) {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return nil, err
		}
		if err := h.CreateFolder(root, RootFolder); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating %s: %w", root, err)
		}
	}
	got, err := h.Folder(root)
	if err != nil {
		return nil, fmt.Errorf("reading who owns %s: %w", root, err)
	}
	switch {
	case !TrustedOwner(got.Owner):
		err = h.WithPrivileges(func() error { return h.SetFolder(root, RootFolder) }, TakeOwnershipPrivilege, RestorePrivilege)
		repairs = append(repairs, fmt.Sprintf("%s was owned by %s, who could change what it holds; Administrators own it now and only SYSTEM and Administrators may use it", root, got.Owner))
	case !sameAccess(got, RootFolder):
		err = h.SetFolder(root, Folder{Protected: true, Entries: RootFolder.Entries})
		repairs = append(repairs, fmt.Sprintf("%s had the access list %s; only SYSTEM and Administrators may use it now", root, describe(got)))
	}
	if err != nil {
		return repairs, fmt.Errorf("restricting %s to SYSTEM and Administrators: %w", root, err)
	}
	if back, err := h.Folder(root); err != nil {
		return repairs, fmt.Errorf("reading %s back: %w", root, err)
	} else if !TrustedOwner(back.Owner) || !sameAccess(back, RootFolder) {
		return repairs, &NotKeptError{What: fmt.Sprintf("restricting %s to SYSTEM and Administrators", root), Got: describe(back)}
	}
	return repairs, nil
}

// Grant adds an entry letting sid use dir (its files and sub-folders
// inherit it) to the entries dir has, unless one already grants as much;
// the folder is created if need be, and the entry is read back.
func Grant(h Host, dir, sid string, access Access) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	got, err := h.Folder(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if grants(got, sid, access) {
		return nil
	}
	entries := slices.DeleteFunc(slices.Clone(got.Entries), func(e Entry) bool { return e.SID == sid && !e.Deny })
	entries = append(entries, Entry{SID: sid, Access: access, Inherit: true})
	if err := h.SetFolder(dir, Folder{Protected: got.Protected, Entries: entries}); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	back, err := h.Folder(dir)
	if err != nil {
		return fmt.Errorf("%s: reading it back: %w", dir, err)
	}
	if !grants(back, sid, access) {
		return &NotKeptError{What: fmt.Sprintf("%s: %s for %s", dir, access, sid), Got: describe(back)}
	}
	return nil
}

// Grants reports whether f's own entries give sid at least access to the
// folder and everything in it, with no entry of its own denying any.
func grants(f Folder, sid string, access Access) bool {
	ok := false
	for _, e := range f.Entries {
		if e.SID != sid {
			continue
		}
		if e.Deny {
			return false
		}
		ok = ok || (e.Inherit && e.Access&access == access)
	}
	return ok
}

// Grants is grants for callers that check folders: tests and facts.
func Grants(f Folder, sid string, access Access) bool { return grants(f, sid, access) }

// sameAccess compares access lists as sets, with protection.
func sameAccess(a, b Folder) bool {
	if a.Protected != b.Protected || len(a.Entries) != len(b.Entries) {
		return false
	}
	for _, e := range a.Entries {
		if !slices.Contains(b.Entries, e) {
			return false
		}
	}
	return true
}

// describe writes a folder's security for messages.
func describe(f Folder) string {
	var parts []string
	for _, e := range f.Entries {
		kind := "allow"
		if e.Deny {
			kind = "deny"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", kind, e.SID, e.Access))
	}
	prot := ""
	if !f.Protected {
		prot = ", inheriting its parent's"
	}
	return fmt.Sprintf("owner %s, [%s]%s", orNone(f.Owner), strings.Join(parts, "; "), prot)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// EnsureRight gives the account with sid right unless it holds it
// already, and reads it back. added says whether this call gave it, so
// the caller knows the right is its own to take away later.
func EnsureRight(h Host, sid, right string) (added bool, err error) {
	have, err := h.Rights(sid)
	if err != nil {
		return false, fmt.Errorf("reading the rights of %s: %w", sid, err)
	}
	if slices.Contains(have, right) {
		return false, nil
	}
	if err := h.AddRight(sid, right); err != nil {
		return false, fmt.Errorf("granting %s to %s: %w", right, sid, err)
	}
	back, err := h.Rights(sid)
	if err != nil {
		return true, fmt.Errorf("reading the rights of %s back: %w", sid, err)
	}
	if !slices.Contains(back, right) {
		return true, &NotKeptError{What: fmt.Sprintf("granting %s to %s", right, sid), Got: fmt.Sprintf("the rights %v", back)}
	}
	return true, nil
}
