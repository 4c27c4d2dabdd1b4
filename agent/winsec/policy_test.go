package winsec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"github.com/gsd-deploy/gsd/agent/winsec"
	"github.com/gsd-deploy/gsd/agent/winsec/winsectest"
)

// Windows derives a service's SID from its name; these are the SIDs
// Windows shows for NT SERVICE\TrustedInstaller and NT SERVICE\MSSQLSERVER.
func TestServiceSID(t *testing.T) {
	for name, want := range map[string]string{
		"TrustedInstaller": "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
		"MSSQLSERVER":      "S-1-5-80-3880718306-3832830129-1677859214-2598158968-1052248003",
	} {
		if got := winsec.ServiceSID(name); got != want {
			t.Errorf("ServiceSID(%s) = %s, want %s", name, got, want)
		}
		if got, ok := winsec.BuiltinSID(`nt service\` + strings.ToLower(name)); !ok || got != want {
			t.Errorf("BuiltinSID(NT SERVICE\\%s) = %s, %v", name, got, ok)
		}
	}
	if _, ok := winsec.BuiltinSID(`CORP\svc`); ok {
		t.Error("a domain user resolved without a lookup")
	}
}

const mallory = "S-1-5-21-1-2-3-1001"

// A root that does not exist is created owned by Administrators with only
// SYSTEM and Administrators allowed; one another user created (and shut
// administrators out of) is taken back, which needs the take-ownership
// privileges; one with a wider access list is narrowed. Each repair is
// reported, and a root already right is left alone.
func TestSecureRoot(t *testing.T) {
	dir := testfs.TempDir(t)
	for _, tc := range []struct {
		name    string
		plant   *winsec.Folder
		repairs string
	}{
		{name: "new"},
		{name: "planted", plant: &winsec.Folder{Owner: mallory, Protected: true, Entries: []winsec.Entry{
			{SID: mallory, Access: winsec.FullControl, Inherit: true},
			{SID: winsec.SIDAdministrators, Access: winsec.FullControl, Deny: true},
		}}, repairs: "was owned by " + mallory},
		{name: "open", plant: &winsec.Folder{Owner: winsec.SIDAdministrators, Entries: []winsec.Entry{
			{SID: winsec.SIDUsers, Access: winsec.Modify, Inherit: true},
		}}, repairs: "allow " + winsec.SIDUsers + " modify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := winsectest.New()
			root := filepath.Join(dir, tc.name, "gsd")
			if tc.plant != nil {
				if err := os.MkdirAll(root, 0o755); err != nil {
					t.Fatal(err)
				}
				h.Plant(root, *tc.plant)
				if tc.plant.Owner == mallory {
					if err := h.SetFolder(root, winsec.RootFolder); !errors.Is(err, winsectest.ErrAccessDenied) {
						t.Fatalf("the fake let an administrator take a folder without privileges: %v", err)
					}
				}
			}
			repairs, err := winsec.SecureRoot(h, root)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(repairs, "\n"); (tc.repairs == "") != (got == "") || !strings.Contains(got, tc.repairs) {
				t.Fatalf("repairs %q, want one saying %q", got, tc.repairs)
			}
			f, _ := h.Folder(root)
			if f.Owner != winsec.SIDAdministrators || !f.Protected || len(f.Entries) != 2 ||
				!winsec.Grants(f, winsec.SIDSystem, winsec.FullControl) || !winsec.Grants(f, winsec.SIDAdministrators, winsec.FullControl) {
				t.Fatalf("root security %+v", f)
			}
			if again, err := winsec.SecureRoot(h, root); err != nil || len(again) > 0 {
				t.Fatalf("a secure root was repaired again: %q %v", again, err)
			}
		})
	}
}

// Grant adds to what a folder has and keeps the rest; granting as much
// again changes nothing.
func TestGrant(t *testing.T) {
	h := winsectest.New()
	dir := filepath.Join(testfs.TempDir(t), "logs")
	sid := winsec.ServiceSID("api")
	other := winsec.Entry{SID: winsec.SIDUsers, Access: winsec.Read, Inherit: true}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.Plant(dir, winsec.Folder{Owner: winsec.SIDAdministrators, Entries: []winsec.Entry{other, {SID: sid, Access: winsec.Read, Inherit: true}}})
	for i := 0; i < 2; i++ {
		if err := winsec.Grant(h, dir, sid, winsec.Modify); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := h.Folder(dir)
	if len(f.Entries) != 2 || !winsec.Grants(f, sid, winsec.Modify) || !winsec.Grants(f, winsec.SIDUsers, winsec.Read) {
		t.Fatalf("entries %+v", f.Entries)
	}
}

// EnsureRight gives a right once and says so; a right the account held
// already is not given again, and not reported as given.
func TestEnsureRight(t *testing.T) {
	h := winsectest.New()
	const user, held = "S-1-5-21-9-9-9-1100", "S-1-5-21-9-9-9-1101"
	h.GiveRight(held, winsec.ServiceLogonRight)
	for i, want := range []bool{true, false} {
		added, err := winsec.EnsureRight(h, user, winsec.ServiceLogonRight)
		if err != nil || added != want {
			t.Fatalf("call %d: added %v, %v", i, added, err)
		}
	}
	if added, err := winsec.EnsureRight(h, held, winsec.ServiceLogonRight); err != nil || added {
		t.Fatalf("a held right: added %v, %v", added, err)
	}
	if got := strings.Join(h.Calls, ";"); got != "add "+user+" "+winsec.ServiceLogonRight {
		t.Fatalf("calls %s", got)
	}
}
