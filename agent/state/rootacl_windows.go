//go:build windows

package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// rootSDDL grants full control to SYSTEM and Administrators only, inherited
// by every file and folder below, and is protected (P) so the permissive
// ACL of C:\ProgramData, which lets Users create files in subfolders, is
// not inherited: anyone who can write under the root can plant a journal
// that an administrator's agent replays, a lock that blocks the host, or a
// binary that becomes a service.
const rootSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// sharedSDDL is added (on top of the root's inherited entries) to the
// artifact store and the agent binaries: a service runs as its own account,
// which must be able to read its image (or, wrapped, the agent as service
// host and the program it runs), so Users may read and execute there
// (content-addressed binaries hold no secrets), never write.
const sharedSDDL = "D:(A;OICI;0x1200a9;;;BU)"

// SecureRoot creates root if needed and gives it a protected DACL that
// grants only SYSTEM and Administrators, re-applying it if root exists
// (children inherit it). If the host cannot apply or report ACLs (Wine),
// gap says why and err is nil; on Windows proper a failure is an error.
func SecureRoot(root string) (gap string, err error) {
	sd, err := windows.SecurityDescriptorFromString(rootSDDL)
	if err != nil {
		return "", err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return "", err
		}
		p, err := windows.UTF16PtrFromString(root)
		if err != nil {
			return "", err
		}
		// Created with the DACL in place, so there is no moment in which
		// the inherited, permissive one applies.
		sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
		sa.Length = uint32(unsafe.Sizeof(*sa))
		if err := windows.CreateDirectory(p, sa); err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			return "", fmt.Errorf("create %s: %w", root, err)
		}
	}
	setErr := windows.SetNamedSecurityInfo(root, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if setErr == nil {
		setErr = checkProtected(root)
	}
	if setErr == nil {
		l := Layout{Root: root}
		for _, dir := range []string{l.ArtifactDir(), l.BinDir()} {
			if setErr = addACEs(dir, sharedSDDL, "BU"); setErr != nil {
				break
			}
		}
	}
	if setErr != nil {
		if wine.Detected() {
			return fmt.Sprintf("the protected DACL (SYSTEM, Administrators) could not be applied on this host: %v", setErr), nil
		}
		return "", fmt.Errorf("restricting %s to SYSTEM and Administrators: %w", root, setErr)
	}
	return "", nil
}

// checkProtected reads the DACL back: a host that accepts the call but does
// not keep the setting must not pass for a protected one.
func checkProtected(root string) error {
	got, err := windows.GetNamedSecurityInfo(root, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the DACL back: %w", err)
	}
	control, _, err := got.Control()
	if err != nil {
		return fmt.Errorf("reading the DACL back: %w", err)
	}
	if control&windows.SE_DACL_PROTECTED == 0 {
		return fmt.Errorf("the DACL read back is not protected: %s", got.String())
	}
	return nil
}

// addACEs creates dir if needed and adds the entries of sddl (an
// unprotected DACL, so the parent's inherited entries stay), then checks
// that an entry for want (a SID, as a string or SDDL alias) is in the DACL
// read back.
func addACEs(dir, sddl, want string) error {
	wantSID, err := windows.StringToSid(want)
	if err != nil {
		if wantSID, err = windows.CreateWellKnownSid(aliasSID[want]); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.UNPROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	got, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%s: reading the DACL back: %w", dir, err)
	}
	if !daclGrants(got, wantSID) {
		return fmt.Errorf("%s: the DACL read back has no entry for %s: %s", dir, want, got.String())
	}
	return nil
}

// aliasSID maps the SDDL aliases used here to their well-known SIDs.
var aliasSID = map[string]windows.WELL_KNOWN_SID_TYPE{"BU": windows.WinBuiltinUsersSid}

// daclGrants reports whether sd's DACL has an allow entry for sid. SIDs
// are compared, not SDDL text, which renders well-known ones as aliases.
func daclGrants(sd *windows.SECURITY_DESCRIPTOR, sid *windows.SID) bool {
	acl, _, err := sd.DACL()
	if err != nil || acl == nil {
		return false
	}
	for i := uint32(0); i < uint32(acl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if windows.GetAce(acl, i, &ace) != nil {
			return false
		}
		if ace.Header.AceType == windows.ACCESS_ALLOWED_ACE_TYPE &&
			(*windows.SID)(unsafe.Pointer(&ace.SidStart)).Equals(sid) {
			return true
		}
	}
	return false
}

// GrantServiceAccess lets the account a service runs as read its managed
// files and wrapper config (services/<name>) and write its logs
// (services/<name>/logs, where the service host also keeps its status),
// which the root's DACL otherwise reserves to SYSTEM and Administrators.
// It is called after the service exists, as a virtual account
// (NT SERVICE\<name>) only exists from then on. LocalSystem needs nothing.
// A host that cannot do it (Wine keeps no ACLs) yields a gap, not an error.
func GrantServiceAccess(l Layout, service, account string) (gap string, err error) {
	sid, err := accountSID(account)
	if err != nil || sid == nil {
		if err != nil {
			err = fmt.Errorf("resolving service account %q: %w", account, err)
		}
		return wineGap(err)
	}
	s := sid.String()
	if err := addACEs(l.ServiceDir(service), "D:(A;OICI;0x1200a9;;;"+s+")", s); err != nil {
		return wineGap(err)
	}
	// Modify (read, write, delete): the logs rotate by renaming.
	if err := addACEs(l.LogDir(service), "D:(A;OICI;0x1301bf;;;"+s+")", s); err != nil {
		return wineGap(err)
	}
	return "", nil
}

func wineGap(err error) (string, error) {
	if err == nil {
		return "", nil
	}
	if wine.Detected() {
		return "service account access to its files not applied on this host: " + err.Error(), nil
	}
	return "", err
}

// accountSID resolves the account names the agent accepts (see package
// scm's accountName); nil for LocalSystem, which SYSTEM's entry covers.
func accountSID(account string) (*windows.SID, error) {
	switch strings.ToLower(account) {
	case "", "localsystem", `nt authority\system`, "system":
		return nil, nil
	case "localservice", `nt authority\localservice`, `nt authority\local service`:
		return windows.CreateWellKnownSid(windows.WinLocalServiceSid)
	case "networkservice", `nt authority\networkservice`, `nt authority\network service`:
		return windows.CreateWellKnownSid(windows.WinNetworkServiceSid)
	}
	// `.\user` is a local account as services write it.
	sid, _, _, err := windows.LookupSID("", strings.TrimPrefix(account, `.\`))
	return sid, err
}

// GrantFolderAccess adds, to what a folder outside the root already
// grants, read access (or modify, for a log folder) for the account a
// service runs as: a custom file path's folder, or a custom log folder.
// Entries others put there are kept. The folder is created if need be.
func GrantFolderAccess(dir, account string, modify bool) (gap string, err error) {
	sid, err := accountSID(account)
	if err != nil || sid == nil {
		if err != nil {
			err = fmt.Errorf("resolving service account %q: %w", account, err)
		}
		return wineGap(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mask := windows.ACCESS_MASK(0x1200a9) // read and execute
	if modify {
		mask = 0x1301bf
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return wineGap(fmt.Errorf("%s: %w", dir, err))
	}
	old, _, err := sd.DACL()
	if err != nil {
		return wineGap(fmt.Errorf("%s: %w", dir, err))
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: mask,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT,
		Trustee:           windows.TRUSTEE{TrusteeForm: windows.TRUSTEE_IS_SID, TrusteeValue: windows.TrusteeValueFromSID(sid)},
	}}, old)
	if err != nil {
		return wineGap(fmt.Errorf("%s: %w", dir, err))
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, acl, nil); err != nil {
		return wineGap(fmt.Errorf("%s: %w", dir, err))
	}
	return "", nil
}
