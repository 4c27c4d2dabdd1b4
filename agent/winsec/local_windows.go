//go:build windows

package winsec

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// Local is this host's own security.
func Local() Host { return local{} }

type local struct{}

func (local) SID(account string) (string, error) {
	if sid, ok := BuiltinSID(account); ok {
		return sid, nil
	}
	name := account
	if rest, ok := strings.CutPrefix(account, `.\`); ok {
		// A local account; a bare name could resolve to a domain one.
		host, err := os.Hostname()
		if err != nil {
			return "", err
		}
		name = host + `\` + rest
	}
	sid, _, _, err := windows.LookupSID("", name)
	if err != nil && wine.Detected() {
		// Wine knows no accounts but its own user.
		return "", fmt.Errorf("looking up account %s: %v: %w", account, err, ErrUnsupported)
	}
	if err != nil {
		return "", fmt.Errorf("looking up account %s: %w", account, err)
	}
	return sid.String(), nil
}

func parseSID(s string) (*windows.SID, error) {
	sid, err := windows.StringToSid(s)
	if err != nil {
		return nil, fmt.Errorf("SID %q: %w", s, err)
	}
	return sid, nil
}

func (local) Rights(sid string) ([]string, error) {
	s, err := parseSID(sid)
	if err != nil {
		return nil, err
	}
	return lsaRights(s)
}

func (local) AddRight(sid, right string) error {
	s, err := parseSID(sid)
	if err != nil {
		return err
	}
	return lsaChangeRight(s, right, true)
}

func (local) RemoveRight(sid, right string) error {
	s, err := parseSID(sid)
	if err != nil {
		return err
	}
	return lsaChangeRight(s, right, false)
}

func (local) ManagedAccount(account string) (ManagedStatus, error) {
	return queryManagedAccount(account)
}

// tokenMu keeps two callers from enabling and restoring the process
// token's privileges over each other.
var tokenMu sync.Mutex

func (local) WithPrivileges(fn func() error, privileges ...string) error {
	tokenMu.Lock()
	defer tokenMu.Unlock()
	if err := find(procAdjustTokenPrivileges); err != nil {
		return err
	}
	var token windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &token); err != nil {
		return fmt.Errorf("opening the agent's token: %w", err)
	}
	defer token.Close()
	buf := make([]byte, 4+len(privileges)*int(unsafe.Sizeof(windows.LUIDAndAttributes{})))
	set := (*windows.Tokenprivileges)(unsafe.Pointer(&buf[0]))
	set.PrivilegeCount = uint32(len(privileges))
	all := unsafe.Slice(&set.Privileges[0], len(privileges))
	for i, name := range privileges {
		p, err := windows.UTF16PtrFromString(name)
		if err != nil {
			return err
		}
		if err := windows.LookupPrivilegeValue(nil, p, &all[i].Luid); err != nil {
			return fmt.Errorf("looking up %s: %w", name, err)
		}
		all[i].Attributes = windows.SE_PRIVILEGE_ENABLED
	}
	prev, err := adjustPrivileges(token, set)
	if err != nil {
		return fmt.Errorf("enabling %s in the agent's token (its account must hold them; administrators do): %w", strings.Join(privileges, ", "), err)
	}
	defer func() {
		if p := (*windows.Tokenprivileges)(unsafe.Pointer(&prev[0])); p.PrivilegeCount > 0 {
			adjustPrivileges(token, p)
		}
	}()
	return fn()
}

// EnabledPrivileges lists the privileges enabled in the agent's token now,
// for tests that check WithPrivileges really enables them.
func EnabledPrivileges() ([]string, error) {
	var token windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_QUERY, &token); err != nil {
		return nil, err
	}
	defer token.Close()
	n := uint32(1024)
	for {
		buf := make([]byte, n)
		err := windows.GetTokenInformation(token, windows.TokenPrivileges, &buf[0], n, &n)
		if errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) && n > uint32(len(buf)) {
			continue
		}
		if err != nil {
			return nil, err
		}
		tp := (*windows.Tokenprivileges)(unsafe.Pointer(&buf[0]))
		var out []string
		for _, p := range unsafe.Slice(&tp.Privileges[0], tp.PrivilegeCount) {
			if p.Attributes&windows.SE_PRIVILEGE_ENABLED == 0 {
				continue
			}
			name := make([]uint16, 256)
			size := uint32(len(name))
			if lookupPrivilegeName(&p.Luid, &name[0], &size) == nil {
				out = append(out, windows.UTF16ToString(name[:size]))
			}
		}
		return out, nil
	}
}

var procLookupPrivilegeName = advapi32.NewProc("LookupPrivilegeNameW")

func lookupPrivilegeName(luid *windows.LUID, name *uint16, size *uint32) error {
	r, _, e := procLookupPrivilegeName.Call(0, uintptr(unsafe.Pointer(luid)), uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(size)))
	if r == 0 {
		return e
	}
	return nil
}

func descriptor(f Folder) (*windows.SECURITY_DESCRIPTOR, error) {
	var b strings.Builder
	if f.Owner != "" {
		b.WriteString("O:" + f.Owner)
	}
	b.WriteString("D:")
	if f.Protected {
		b.WriteString("P")
	}
	for _, e := range f.Entries {
		kind, flags := "A", ""
		if e.Deny {
			kind = "D"
		}
		if e.Inherit {
			flags = "OICI"
		}
		fmt.Fprintf(&b, "(%s;%s;0x%x;;;%s)", kind, flags, uint32(e.Access), e.SID)
	}
	return windows.SecurityDescriptorFromString(b.String())
}

func (local) CreateFolder(path string, f Folder) error {
	sd, err := descriptor(f)
	if err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	if err := windows.CreateDirectory(p, sa); err != nil {
		if errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			return os.ErrExist
		}
		return err
	}
	return nil
}

func (local) Folder(path string) (Folder, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return Folder{}, err
	}
	var f Folder
	if owner, _, err := sd.Owner(); err == nil && owner != nil {
		f.Owner = owner.String()
	}
	control, _, err := sd.Control()
	if err != nil {
		return Folder{}, err
	}
	f.Protected = control&windows.SE_DACL_PROTECTED != 0
	acl, _, err := sd.DACL()
	if err != nil || acl == nil {
		return f, err
	}
	for i := uint32(0); i < uint32(acl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(acl, i, &ace); err != nil {
			return Folder{}, err
		}
		if ace.Header.AceFlags&windows.INHERITED_ACE != 0 {
			continue
		}
		var deny bool
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
		case windows.ACCESS_DENIED_ACE_TYPE:
			deny = true
		default:
			continue
		}
		const both = windows.OBJECT_INHERIT_ACE | windows.CONTAINER_INHERIT_ACE
		f.Entries = append(f.Entries, Entry{
			SID:     (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String(),
			Access:  Access(ace.Mask),
			Deny:    deny,
			Inherit: ace.Header.AceFlags&both == both,
		})
	}
	return f, nil
}

func (local) SetFolder(path string, f Folder) error {
	sd, err := descriptor(f)
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	info := windows.SECURITY_INFORMATION(windows.DACL_SECURITY_INFORMATION | windows.UNPROTECTED_DACL_SECURITY_INFORMATION)
	if f.Protected {
		info = windows.DACL_SECURITY_INFORMATION | windows.PROTECTED_DACL_SECURITY_INFORMATION
	}
	var owner *windows.SID
	if f.Owner != "" {
		if owner, _, err = sd.Owner(); err != nil {
			return err
		}
		info |= windows.OWNER_SECURITY_INFORMATION
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, info, owner, nil, dacl, nil)
}
