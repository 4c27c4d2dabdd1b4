//go:build windows

package winsec_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
	"github.com/gsd-deploy/gsd/agent/winsec"
)

// WithPrivileges really enables the privilege in the process token, and
// only for the call: Wine implements token privileges, so this runs the
// real calls.
func TestPrivilegeEnabledOnlyDuringCall(t *testing.T) {
	enabled := func() bool {
		got, err := winsec.EnabledPrivileges()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(got, winsec.ShutdownPrivilege)
	}
	if enabled() {
		t.Fatalf("%s is enabled before the call", winsec.ShutdownPrivilege)
	}
	var during bool
	if err := winsec.Local().WithPrivileges(func() error { during = enabled(); return nil }, winsec.ShutdownPrivilege); err != nil {
		t.Fatal(err)
	}
	if !during || enabled() {
		t.Fatalf("enabled during the call: %v; after it: %v", during, enabled())
	}
	if err := winsec.Local().WithPrivileges(func() error { return nil }, "SeNoSuchPrivilege"); err == nil {
		t.Fatal("an unknown privilege was enabled")
	}
}

// Account rights go through the local security policy. Wine's
// LsaAddAccountRights succeeds without keeping anything, which the
// read-back catches; on Windows the right is given and taken away again.
func TestLocalAccountRights(t *testing.T) {
	h := winsec.Local()
	sid, err := h.SID("LocalService")
	if err != nil {
		t.Fatal(err)
	}
	const right = "SeBatchLogonRight"
	had, err := h.Rights(sid)
	if err != nil {
		t.Fatal(err)
	}
	added, err := winsec.EnsureRight(h, sid, right)
	var nk *winsec.NotKeptError
	if wine.Detected() {
		if !errors.As(err, &nk) {
			t.Fatalf("under Wine: %v, want a right that was not kept", err)
		}
		t.Logf("Wine: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if added == slices.Contains(had, right) {
		t.Fatalf("added %v though the account had %v", added, had)
	}
	if added {
		if err := h.RemoveRight(sid, right); err != nil {
			t.Fatal(err)
		}
	}
}

// NetQueryServiceAccount is missing from Wine (and Windows before 2008 R2):
// the host says it cannot tell rather than guess.
func TestLocalManagedAccount(t *testing.T) {
	_, err := winsec.Local().ManagedAccount(`CORP\web$`)
	if wine.Detected() && !errors.Is(err, winsec.ErrUnsupported) {
		t.Fatalf("under Wine: %v, want ErrUnsupported", err)
	}
	t.Logf("%v", err)
}

// The root's owner and access list are set and read back through the
// Windows ACL calls. Wine accepts them and shows its own (derived from
// Unix permissions), which the read-back reports; Windows keeps them.
func TestLocalSecureRootAndGrant(t *testing.T) {
	h := winsec.Local()
	root := filepath.Join(testfs.TempDir(t), "gsd")
	_, err := winsec.SecureRoot(h, root)
	var nk *winsec.NotKeptError
	if wine.Detected() {
		if !errors.As(err, &nk) {
			t.Fatalf("under Wine: %v, want an access list that was not kept", err)
		}
		t.Logf("Wine: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(root, "services", "api", "logs")
	if err := winsec.Grant(h, logs, winsec.ServiceSID("api"), winsec.Modify); err != nil {
		t.Fatal(err)
	}
	f, err := h.Folder(logs)
	if err != nil || !winsec.Grants(f, winsec.ServiceSID("api"), winsec.Modify) {
		t.Fatalf("%+v %v", f, err)
	}
}
