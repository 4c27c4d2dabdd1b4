//go:build windows

package winsec

// The Windows functions golang.org/x/sys/windows does not wrap: the local
// security policy's account rights (advapi32 LsaOpenPolicy,
// LsaEnumerateAccountRights, LsaAddAccountRights, LsaRemoveAccountRights),
// AdjustTokenPrivileges called so that ERROR_NOT_ALL_ASSIGNED is seen,
// and the managed service account checks of netapi32
// (NetIsServiceAccount, NetQueryServiceAccount), which older Windows and
// Wine lack. Each is loaded lazily and reported as ErrUnsupported when
// absent.

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	advapi32                   = windows.NewLazySystemDLL("advapi32.dll")
	procLsaOpenPolicy          = advapi32.NewProc("LsaOpenPolicy")
	procLsaClose               = advapi32.NewProc("LsaClose")
	procLsaFreeMemory          = advapi32.NewProc("LsaFreeMemory")
	procLsaEnumerateRights     = advapi32.NewProc("LsaEnumerateAccountRights")
	procLsaAddAccountRights    = advapi32.NewProc("LsaAddAccountRights")
	procLsaRemoveAccountRights = advapi32.NewProc("LsaRemoveAccountRights")
	procLsaNtStatusToWinError  = advapi32.NewProc("LsaNtStatusToWinError")
	procAdjustTokenPrivileges  = advapi32.NewProc("AdjustTokenPrivileges")

	netapi32                   = windows.NewLazySystemDLL("netapi32.dll")
	procNetIsServiceAccount    = netapi32.NewProc("NetIsServiceAccount")
	procNetQueryServiceAccount = netapi32.NewProc("NetQueryServiceAccount")
	procNetApiBufferFree       = netapi32.NewProc("NetApiBufferFree")
)

// Access to the policy object that reading and changing account rights
// needs (POLICY_LOOKUP_NAMES | POLICY_CREATE_ACCOUNT).
const policyAccess = 0x00000800 | 0x00000010

// statusObjectNameNotFound is what LsaEnumerateAccountRights returns for
// an account that holds no rights at all.
const statusObjectNameNotFound = 0xC0000034

type lsaUnicodeString struct {
	Length        uint16
	MaximumLength uint16
	Buffer        *uint16
}

type lsaObjectAttributes struct {
	Length                   uint32
	RootDirectory            uintptr
	ObjectName               uintptr
	Attributes               uint32
	SecurityDescriptor       uintptr
	SecurityQualityOfService uintptr
}

func lsaError(status uintptr) error {
	if status == 0 {
		return nil
	}
	code, _, _ := procLsaNtStatusToWinError.Call(status)
	return windows.Errno(code)
}

func find(p *windows.LazyProc) error {
	if err := p.Find(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, ErrUnsupported)
	}
	return nil
}

// withPolicy opens the local security policy for fn.
func withPolicy(fn func(policy uintptr) error) error {
	for _, p := range []*windows.LazyProc{procLsaOpenPolicy, procLsaClose, procLsaNtStatusToWinError} {
		if err := find(p); err != nil {
			return err
		}
	}
	var attrs lsaObjectAttributes
	attrs.Length = uint32(unsafe.Sizeof(attrs))
	var policy uintptr
	st, _, _ := procLsaOpenPolicy.Call(0, uintptr(unsafe.Pointer(&attrs)), policyAccess, uintptr(unsafe.Pointer(&policy)))
	if err := lsaError(st); err != nil {
		return fmt.Errorf("LsaOpenPolicy: %w", err)
	}
	defer procLsaClose.Call(policy)
	return fn(policy)
}

func lsaString(s string) (lsaUnicodeString, error) {
	u, err := windows.UTF16FromString(s)
	if err != nil {
		return lsaUnicodeString{}, err
	}
	return lsaUnicodeString{Length: uint16(2 * (len(u) - 1)), MaximumLength: uint16(2 * len(u)), Buffer: &u[0]}, nil
}

func lsaRights(sid *windows.SID) ([]string, error) {
	var out []string
	err := withPolicy(func(policy uintptr) error {
		if err := find(procLsaEnumerateRights); err != nil {
			return err
		}
		var list *lsaUnicodeString
		var n uint32
		st, _, _ := procLsaEnumerateRights.Call(policy, uintptr(unsafe.Pointer(sid)), uintptr(unsafe.Pointer(&list)), uintptr(unsafe.Pointer(&n)))
		if st == statusObjectNameNotFound {
			return nil
		}
		if err := lsaError(st); err != nil {
			return fmt.Errorf("LsaEnumerateAccountRights: %w", err)
		}
		defer procLsaFreeMemory.Call(uintptr(unsafe.Pointer(list)))
		for _, r := range unsafe.Slice(list, n) {
			out = append(out, windows.UTF16ToString(unsafe.Slice(r.Buffer, r.Length/2)))
		}
		return nil
	})
	return out, err
}

// lsaChangeRight adds or removes one right of the account with sid.
func lsaChangeRight(sid *windows.SID, right string, add bool) error {
	proc, name := procLsaRemoveAccountRights, "LsaRemoveAccountRights"
	if add {
		proc, name = procLsaAddAccountRights, "LsaAddAccountRights"
	}
	return withPolicy(func(policy uintptr) error {
		if err := find(proc); err != nil {
			return err
		}
		s, err := lsaString(right)
		if err != nil {
			return err
		}
		var st uintptr
		if add {
			st, _, _ = proc.Call(policy, uintptr(unsafe.Pointer(sid)), uintptr(unsafe.Pointer(&s)), 1)
		} else {
			// AllRights FALSE: only this one right goes.
			st, _, _ = proc.Call(policy, uintptr(unsafe.Pointer(sid)), 0, uintptr(unsafe.Pointer(&s)), 1)
		}
		if err := lsaError(st); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// adjustPrivileges sets the attributes of privileges in the token and
// returns their previous state. A privilege the token does not hold makes
// AdjustTokenPrivileges succeed with ERROR_NOT_ALL_ASSIGNED, which is an
// error here.
func adjustPrivileges(token windows.Token, set *windows.Tokenprivileges) ([]byte, error) {
	prev := make([]byte, 4+int(set.PrivilegeCount)*int(unsafe.Sizeof(windows.LUIDAndAttributes{})))
	var n uint32
	r, _, e := procAdjustTokenPrivileges.Call(uintptr(token), 0, uintptr(unsafe.Pointer(set)), uintptr(len(prev)), uintptr(unsafe.Pointer(&prev[0])), uintptr(unsafe.Pointer(&n)))
	if r == 0 {
		return nil, e
	}
	if errors.Is(e, windows.ERROR_NOT_ALL_ASSIGNED) {
		return nil, e
	}
	return prev, nil
}

// The states NetQueryServiceAccount reports (MSA_INFO_STATE).
const (
	msaNotExist      = 1
	msaNotService    = 2
	msaCannotInstall = 3
	msaCanInstall    = 4
	msaInstalled     = 5
)

func queryManagedAccount(account string) (ManagedStatus, error) {
	for _, p := range []*windows.LazyProc{procNetIsServiceAccount, procNetQueryServiceAccount, procNetApiBufferFree} {
		if err := find(p); err != nil {
			return ManagedStatus{}, err
		}
	}
	name, err := windows.UTF16PtrFromString(account)
	if err != nil {
		return ManagedStatus{}, err
	}
	var isService int32
	st, _, _ := procNetIsServiceAccount.Call(0, uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&isService)))
	if err := lsaError(st); err != nil {
		return ManagedStatus{}, fmt.Errorf("NetIsServiceAccount: %w", err)
	}
	if isService == 0 {
		return ManagedStatus{Detail: "this host does not know it as a managed service account: check the name, that the account exists (New-ADServiceAccount) and that the host may retrieve its password (PrincipalsAllowedToRetrieveManagedPassword), then run Install-ADServiceAccount on the host"}, nil
	}
	var buf *uint32
	st, _, _ = procNetQueryServiceAccount.Call(0, uintptr(unsafe.Pointer(name)), 0, uintptr(unsafe.Pointer(&buf)))
	if err := lsaError(st); err != nil {
		return ManagedStatus{}, fmt.Errorf("NetQueryServiceAccount: %w", err)
	}
	state := *buf
	procNetApiBufferFree.Call(uintptr(unsafe.Pointer(buf)))
	switch state {
	case msaInstalled, msaCanInstall:
		return ManagedStatus{Usable: true}, nil
	case msaNotExist:
		return ManagedStatus{Detail: "the domain has no such managed service account; create it with New-ADServiceAccount"}, nil
	case msaNotService:
		return ManagedStatus{Detail: "the account is not a managed service account; name a gMSA (ending in $) or a user with a password"}, nil
	case msaCannotInstall:
		return ManagedStatus{Detail: "this computer may not retrieve the account's password; add it (or a group it is in) to PrincipalsAllowedToRetrieveManagedPassword with Set-ADServiceAccount, then run Install-ADServiceAccount on the host"}, nil
	}
	return ManagedStatus{Detail: fmt.Sprintf("NetQueryServiceAccount reported state %d", state)}, nil
}
