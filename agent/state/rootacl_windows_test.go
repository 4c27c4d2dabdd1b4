//go:build windows

package state

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// The root must end up with a protected DACL naming only SYSTEM and
// Administrators, whether it is new or already existed; a host that cannot
// do that (Wine) must say so rather than pass silently.
func TestSecureRootAppliesProtectedDACL(t *testing.T) {
	for _, existing := range []bool{false, true} {
		root := filepath.Join(testfs.TempDir(t), "gsd")
		if existing {
			if _, err := SecureRoot(root); err != nil {
				t.Fatal(err)
			}
		}
		gap, err := SecureRoot(root)
		if err != nil {
			t.Fatalf("existing=%v: %v", existing, err)
		}
		if gap != "" {
			if !wine.Detected() {
				t.Fatalf("gap reported on Windows proper: %s", gap)
			}
			t.Logf("Wine gap: %s", gap)
			continue
		}
		sd, err := windows.GetNamedSecurityInfo(root, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		sddl := sd.String()
		if !strings.Contains(sddl, "D:P") {
			t.Fatalf("DACL not protected: %s", sddl)
		}
		for _, ace := range strings.Split(sddl[strings.Index(sddl, "D:P")+3:], ")") {
			if ace == "" {
				continue
			}
			if !strings.HasSuffix(ace, ";;;SY") && !strings.HasSuffix(ace, ";;;BA") {
				t.Fatalf("DACL grants more than SYSTEM and Administrators: %s", sddl)
			}
		}
	}
}

// Services run as their own accounts: Users may read and run binaries in
// the store, and a service's account gets its own files and logs; nothing
// else below the root.
func TestServiceAccountsGetOnlyTheirOwnAccess(t *testing.T) {
	l := Layout{Root: filepath.Join(testfs.TempDir(t), "gsd")}
	gap, err := SecureRoot(l.Root)
	if err != nil {
		t.Fatal(err)
	}
	if gap == "" {
		users, _ := windows.CreateWellKnownSid(windows.WinBuiltinUsersSid)
		for _, dir := range []string{l.ArtifactDir(), l.BinDir(), l.Root} {
			sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
			if err != nil {
				t.Fatal(err)
			}
			if got := daclGrants(sd, users); got != (dir != l.Root) {
				t.Fatalf("%s grants Users: %v (%s)", dir, got, sd.String())
			}
		}
	}
	if gap, err := GrantServiceAccess(l, "api", "LocalSystem"); gap != "" || err != nil {
		t.Fatalf("LocalSystem: %q %v", gap, err)
	}
	gap, err = GrantServiceAccess(l, "api", "LocalService")
	if err != nil {
		t.Fatal(err)
	}
	if gap != "" {
		if !wine.Detected() {
			t.Fatalf("gap on Windows proper: %s", gap)
		}
		t.Logf("Wine gap: %s", gap)
		return
	}
	ls, _ := windows.CreateWellKnownSid(windows.WinLocalServiceSid)
	for _, dir := range []string{l.ServiceDir("api"), l.LogDir("api")} {
		sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if err != nil || !daclGrants(sd, ls) {
			t.Fatalf("%s does not grant LocalService: %v %v", dir, sd, err)
		}
	}
}
