package winsec

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Well-known SIDs the agent names.
const (
	SIDSystem         = "S-1-5-18"
	SIDLocalService   = "S-1-5-19"
	SIDNetworkService = "S-1-5-20"
	SIDAdministrators = "S-1-5-32-544"
	SIDUsers          = "S-1-5-32-545"
)

// Account rights and privileges the agent uses.
const (
	// ServiceLogonRight lets an account be a service's identity; without
	// it the service manager fails the start with ERROR_SERVICE_LOGON_FAILED.
	ServiceLogonRight = "SeServiceLogonRight"
	// ShutdownPrivilege must be enabled in the caller's token to set
	// failure actions that reboot.
	ShutdownPrivilege = "SeShutdownPrivilege"
	// TakeOwnershipPrivilege and RestorePrivilege let an administrator
	// take a folder back from an owner whose access list shuts
	// administrators out.
	TakeOwnershipPrivilege = "SeTakeOwnershipPrivilege"
	RestorePrivilege       = "SeRestorePrivilege"
)

// Access is a file access mask.
type Access uint32

// The masks Explorer calls Full control, Modify, Read & execute and Read.
const (
	FullControl Access = 0x1f01ff
	Modify      Access = 0x1301bf
	ReadExecute Access = 0x1200a9
	Read        Access = 0x120089
)

func (a Access) String() string {
	switch a {
	case FullControl:
		return "full control"
	case Modify:
		return "modify"
	case ReadExecute:
		return "read and execute"
	case Read:
		return "read"
	}
	return fmt.Sprintf("access 0x%x", uint32(a))
}

// Entry is one entry a folder's access list holds itself (not one it
// inherits from its parent).
type Entry struct {
	SID    string
	Access Access
	// Deny marks an entry that refuses access instead of granting it.
	Deny bool
	// Inherit means the folder's files and sub-folders inherit it.
	Inherit bool
}

// Folder is who owns a folder and who may use it.
type Folder struct {
	Owner string // a SID; empty in SetFolder leaves the owner as it is
	// Protected means the folder does not inherit its parent's entries.
	Protected bool
	Entries   []Entry
}

// Host is the Windows security API the agent calls. Accounts are named as
// a service configuration names them (LocalSystem, NT SERVICE\api,
// DOMAIN\user, .\user, user@domain, DOMAIN\gmsa$).
type Host interface {
	// SID resolves an account name.
	SID(account string) (string, error)
	// Rights lists the rights and privileges held by the account with
	// sid itself (LsaEnumerateAccountRights), not those of its groups.
	Rights(sid string) ([]string, error)
	AddRight(sid, right string) error
	RemoveRight(sid, right string) error
	// ManagedAccount says whether this host can run a service as a group
	// managed service account; ErrUnsupported when the host cannot tell.
	ManagedAccount(account string) (ManagedStatus, error)
	// WithPrivileges runs fn with the privileges enabled in the agent's
	// token and puts them back as they were afterwards.
	WithPrivileges(fn func() error, privileges ...string) error
	// CreateFolder makes a folder that has f from its first moment; it
	// fails if the folder exists.
	CreateFolder(path string, f Folder) error
	Folder(path string) (Folder, error)
	// SetFolder gives path f's owner (unless empty) and access list.
	SetFolder(path string, f Folder) error
}

// ManagedStatus is what the host says about a group managed service
// account.
type ManagedStatus struct {
	Usable bool
	// Detail says why not, and how to fix it, when it is not usable.
	Detail string
}

// ErrUnsupported marks a call this host cannot make: a system without
// Windows security, or a Windows (or Wine) without the function.
var ErrUnsupported = errors.New("not supported on this host")

// ServiceSID is the SID of a service's virtual account, NT SERVICE\name:
// S-1-5-80- followed by the SHA-1 of the upper-cased name in UTF-16LE, as
// five little-endian numbers. Windows derives it the same way, so it is
// known before the service exists and on hosts that cannot look it up.
func ServiceSID(service string) string {
	u := utf16.Encode([]rune(strings.ToUpper(service)))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	sum := sha1.Sum(b)
	parts := make([]string, 5)
	for i := range parts {
		parts[i] = fmt.Sprint(binary.LittleEndian.Uint32(sum[4*i:]))
	}
	return "S-1-5-80-" + strings.Join(parts, "-")
}

// BuiltinSID resolves the accounts every Windows host has without a
// lookup: LocalSystem, LocalService, NetworkService and virtual accounts.
// ok is false for users and managed accounts.
func BuiltinSID(account string) (sid string, ok bool) {
	switch strings.ToLower(account) {
	case "", "localsystem", `nt authority\system`, `.\localsystem`, "system":
		return SIDSystem, true
	case "localservice", `nt authority\localservice`, `nt authority\local service`:
		return SIDLocalService, true
	case "networkservice", `nt authority\networkservice`, `nt authority\network service`:
		return SIDNetworkService, true
	}
	if domain, name, found := strings.Cut(account, `\`); found && strings.EqualFold(domain, "NT SERVICE") && name != "" {
		return ServiceSID(name), true
	}
	return "", false
}
