package winsectest

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/gsd-deploy/gsd/agent/winsec"
)

// Windows error codes the fake returns, as the real calls would.
const (
	ErrAccessDenied         = syscall.Errno(5)    // ERROR_ACCESS_DENIED
	ErrNotAllAssigned       = syscall.Errno(1300) // ERROR_NOT_ALL_ASSIGNED
	ErrNoneMapped           = syscall.Errno(1332) // ERROR_NONE_MAPPED
	ErrServiceLogonFailed   = syscall.Errno(1069) // ERROR_SERVICE_LOGON_FAILED
	ErrInvalidServiceAcount = syscall.Errno(1057) // ERROR_INVALID_SERVICE_ACCOUNT
)

// writeDAC and writeOwner are the access rights changing a folder's
// access list and owner need.
const (
	writeDAC   = 0x40000
	writeOwner = 0x80000
)

// Account is a user or managed account the fake host knows.
type Account struct {
	SID string
	// Password is a user's, checked when a service logs on as it;
	// empty for a managed account, or a user whose password is not
	// checked.
	Password string
	Managed  bool
	// Unusable says why the host cannot use a managed account (empty:
	// it can).
	Unusable string
}

// Fake is a host's security in memory. The agent runs as an
// administrator: its token holds the shutdown, take-ownership and restore
// privileges, none enabled until asked for, and it may own folders as
// Administrators.
type Fake struct {
	mu       sync.Mutex
	accounts map[string]Account // by lower-case name
	rights   map[string][]string
	enabled  map[string]int
	folders  map[string]winsec.Folder // by lower-case clean path
	// NoManagedCheck makes ManagedAccount unsupported, as on hosts
	// without NetQueryServiceAccount.
	NoManagedCheck bool
	// AnyUser makes every user name not added resolve, as an existing
	// user whose password is not checked, for tests about other things.
	AnyUser bool
	// Forgets makes the host accept access lists and account rights and
	// keep neither, as Wine does: they are not there when read back.
	Forgets bool
	// Calls records AddRight and RemoveRight as "add SID RIGHT" and
	// "remove SID RIGHT", and each privilege enabled as "enable NAME".
	Calls []string
}

// New returns a fake host that knows only the built-in accounts.
func New() *Fake {
	return &Fake{accounts: map[string]Account{}, rights: map[string][]string{}, enabled: map[string]int{}, folders: map[string]winsec.Folder{}}
}

// held are the privileges an administrator's token holds.
var held = []string{winsec.ShutdownPrivilege, winsec.TakeOwnershipPrivilege, winsec.RestorePrivilege}

// AddAccount makes an account known, as a domain or local user (with a
// password) or a managed account.
func (f *Fake) AddAccount(name string, a Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[strings.ToLower(name)] = a
}

// GiveRight gives an account a right outside gsd, as an administrator
// or a group policy would.
func (f *Fake) GiveRight(sid, right string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.rights[sid], right) {
		f.rights[sid] = append(f.rights[sid], right)
	}
}

func (f *Fake) SID(account string) (string, error) {
	if sid, ok := winsec.BuiltinSID(account); ok {
		return sid, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.account(account); ok {
		return a.SID, nil
	}
	return "", fmt.Errorf("looking up account %s: %w", account, ErrNoneMapped)
}

// account finds an account; f.mu is held.
func (f *Fake) account(name string) (Account, bool) {
	if a, ok := f.accounts[strings.ToLower(name)]; ok {
		return a, true
	}
	if f.AnyUser && !strings.HasSuffix(name, "$") {
		return Account{SID: fmt.Sprintf("S-1-5-21-7-7-7-%d", crc32.ChecksumIEEE([]byte(strings.ToLower(name))))}, true
	}
	return Account{}, false
}

func (f *Fake) Rights(sid string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rights[sid]), nil
}

func (f *Fake) AddRight(sid, right string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, "add "+sid+" "+right)
	if !f.Forgets && !slices.Contains(f.rights[sid], right) {
		f.rights[sid] = append(f.rights[sid], right)
	}
	return nil
}

func (f *Fake) RemoveRight(sid, right string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, "remove "+sid+" "+right)
	f.rights[sid] = slices.DeleteFunc(f.rights[sid], func(r string) bool { return r == right })
	return nil
}

// HasRight reports whether the account with sid holds right.
func (f *Fake) HasRight(sid, right string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.rights[sid], right)
}

func (f *Fake) ManagedAccount(account string) (winsec.ManagedStatus, error) {
	if f.NoManagedCheck {
		return winsec.ManagedStatus{}, fmt.Errorf("NetQueryServiceAccount: %w", winsec.ErrUnsupported)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[strings.ToLower(account)]
	switch {
	case !ok:
		return winsec.ManagedStatus{Detail: "the domain has no such managed service account"}, nil
	case !a.Managed:
		return winsec.ManagedStatus{Detail: "the account is not a managed service account"}, nil
	case a.Unusable != "":
		return winsec.ManagedStatus{Detail: a.Unusable}, nil
	}
	return winsec.ManagedStatus{Usable: true}, nil
}

func (f *Fake) WithPrivileges(fn func() error, privileges ...string) error {
	f.mu.Lock()
	for _, p := range privileges {
		if !slices.Contains(held, p) {
			f.mu.Unlock()
			return fmt.Errorf("enabling %s: %w", p, ErrNotAllAssigned)
		}
	}
	for _, p := range privileges {
		f.enabled[p]++
		f.Calls = append(f.Calls, "enable "+p)
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for _, p := range privileges {
			f.enabled[p]--
		}
		f.mu.Unlock()
	}()
	return fn()
}

// Enabled reports whether privilege is enabled in the agent's token now.
func (f *Fake) Enabled(privilege string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enabled[privilege] > 0
}

// LogOnAsService is the service manager's check when it starts a service
// as account: a user or managed account needs the logon right, a user its
// password, a managed account a host that can use it.
func (f *Fake) LogOnAsService(account, password string) error {
	if _, ok := winsec.BuiltinSID(account); ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.account(account)
	switch {
	case !ok:
		return ErrInvalidServiceAcount
	case !slices.Contains(f.rights[a.SID], winsec.ServiceLogonRight):
		return fmt.Errorf("%s lacks %s: %w", account, winsec.ServiceLogonRight, ErrServiceLogonFailed)
	case !a.Managed && a.Password != "" && a.Password != password:
		return fmt.Errorf("wrong password for %s: %w", account, ErrServiceLogonFailed)
	case a.Managed && a.Unusable != "":
		return fmt.Errorf("%s: %s: %w", account, a.Unusable, ErrServiceLogonFailed)
	}
	return nil
}

// KnowsAccount is the service manager's check when a service is set to
// run as account.
func (f *Fake) KnowsAccount(account string) error {
	if _, err := f.SID(account); err != nil {
		return ErrInvalidServiceAcount
	}
	return nil
}

func key(path string) string { return strings.ToLower(filepath.Clean(path)) }

// Plant gives a folder an owner and access list without any check, as
// another user who created it would have.
func (f *Fake) Plant(path string, folder winsec.Folder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.folders[key(path)] = folder
}

func (f *Fake) CreateFolder(path string, folder winsec.Folder) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Forgets {
		return nil
	}
	if folder.Owner == "" {
		folder.Owner = winsec.SIDAdministrators
	}
	f.folders[key(path)] = folder
	return nil
}

func (f *Fake) Folder(path string) (winsec.Folder, error) {
	if _, err := os.Stat(path); err != nil {
		return winsec.Folder{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.folder(path), nil
}

// folder is what path has: what was set, or else what a folder an
// administrator created has (its parent's entries, inherited).
func (f *Fake) folder(path string) winsec.Folder {
	if got, ok := f.folders[key(path)]; ok {
		got.Entries = slices.Clone(got.Entries)
		return got
	}
	return winsec.Folder{Owner: winsec.SIDAdministrators}
}

// effective is the access Administrators have to path: its own entries,
// then, unless it is protected, what its parents pass down (C:\ProgramData
// and above grant Administrators full control). A deny entry wins.
func (f *Fake) effective(path string) winsec.Access {
	var allowed winsec.Access
	for p, own := path, true; ; own = false {
		folder := f.folder(p)
		for _, e := range folder.Entries {
			if e.SID != winsec.SIDAdministrators || (!own && !e.Inherit) {
				continue
			}
			if e.Deny {
				return 0
			}
			allowed |= e.Access
		}
		if folder.Protected {
			return allowed
		}
		parent := filepath.Dir(p)
		if parent == p {
			return allowed | winsec.FullControl
		}
		p = parent
	}
}

func (f *Fake) SetFolder(path string, folder winsec.Folder) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.folder(path)
	restore := f.enabled[winsec.RestorePrivilege] > 0
	access := f.effective(path)
	if cur.Owner == winsec.SIDAdministrators {
		access |= writeDAC // an owner may always change the access list
	}
	if folder.Owner != "" && folder.Owner != cur.Owner {
		canTake := f.enabled[winsec.TakeOwnershipPrivilege] > 0 && folder.Owner == winsec.SIDAdministrators
		if !restore && !canTake && access&writeOwner == 0 {
			return fmt.Errorf("setting the owner of %s: %w", path, ErrAccessDenied)
		}
		if !restore && folder.Owner != winsec.SIDAdministrators {
			return fmt.Errorf("setting the owner of %s to %s: %w", path, folder.Owner, ErrAccessDenied)
		}
	}
	if !restore && access&writeDAC == 0 {
		return fmt.Errorf("setting the access list of %s: %w", path, ErrAccessDenied)
	}
	if folder.Owner == "" {
		folder.Owner = cur.Owner
	}
	if f.Forgets {
		return nil
	}
	folder.Entries = slices.Clone(folder.Entries)
	f.folders[key(path)] = folder
	return nil
}

// Entries lists, for messages in tests, every folder with entries.
func (f *Fake) Entries() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p, folder := range f.folders {
		out = append(out, fmt.Sprintf("%s: %+v", p, folder))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
