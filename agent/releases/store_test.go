package releases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/gsd-deploy/gsd/agent/internal/testfs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/seal"
)

func newStore(t *testing.T) Store {
	root := testfs.TempDir(t)
	return Store{Dir: filepath.Join(root, "releases"), Sealer: seal.ForMachine(root), KeyFile: filepath.Join(root, "release.key")}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func record(secret string) Record {
	conf := []byte("port: 8080\n")
	return Record{Kind: "service", Name: "api", Spec: json.RawMessage(`{"name":"api","version":"1.0"}`),
		Files: map[string][]byte{sum(conf): conf}, Secrets: map[string]string{"account.password": secret}}
}

func TestPutGetRoundTripKeepsSecretsSealed(t *testing.T) {
	s := newStore(t)
	id, existed, err := s.Put(record("hunter2-hunter2"))
	if err != nil || existed || !ValidID(id) {
		t.Fatalf("Put = %q, %v, %v", id, existed, err)
	}
	again, existed, err := s.Put(record("hunter2-hunter2"))
	if err != nil || !existed || again != id {
		t.Fatalf("the same release again = %q (existed %v, %v), want %q", again, existed, err, id)
	}
	other, _, err := s.Put(record("another-password"))
	if err != nil || other == id {
		t.Fatalf("a release with another secret got id %q (%v); ids must tell them apart", other, err)
	}
	got, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secrets["account.password"] != "hunter2-hunter2" || string(got.Spec) != `{"name":"api","version":"1.0"}` || len(got.Files) != 1 {
		t.Fatalf("Get = %+v", got)
	}
	filepath.Walk(filepath.Dir(s.Dir), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("hunter2")) {
				t.Errorf("%s holds the secret in clear", p)
			}
		}
		return nil
	})
	if strings.Contains(id, "hunter2") {
		t.Fatal("the id holds the secret")
	}
}

func TestIDsWithoutSecretsAgreeAcrossHosts(t *testing.T) {
	r := record("")
	r.Secrets = nil
	a, _, err := newStore(t).Put(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := newStore(t).Put(r)
	if err != nil || a != b {
		t.Fatalf("two hosts gave one release ids %q and %q (%v)", a, b, err)
	}
	r.Secrets = map[string]string{"env.TOKEN": "t"}
	c, _, _ := newStore(t).Put(r)
	d, _, _ := newStore(t).Put(r)
	if c == d {
		t.Fatal("with secrets, ids of two hosts must differ: each mixes them in with its own key")
	}
}

func TestDamageIsRefused(t *testing.T) {
	s := newStore(t)
	id, _, err := s.Put(record("pw"))
	if err != nil {
		t.Fatal(err)
	}
	conf := []byte("port: 8080\n")
	if err := os.WriteFile(filepath.Join(s.Dir, id, "files", sum(conf)), []byte("port: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a changed file was not noticed: %v", err)
	}
	if _, err := s.Get("r-0000000000000000000a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing release: %v", err)
	}
	for _, bad := range []string{"", "..", "r-../../x", `r-00000000000000000000\..`} {
		if _, err := s.Get(bad); err == nil {
			t.Errorf("Get(%q) accepted", bad)
		}
		if err := s.Remove(bad); err == nil {
			t.Errorf("Remove(%q) accepted", bad)
		}
	}
	bad := record("pw")
	bad.Files = map[string][]byte{sum([]byte("x")): []byte("y")}
	if _, _, err := s.Put(bad); err == nil {
		t.Fatal("a file whose bytes do not match its hash was stored")
	}
}

func TestSweepRemovesHalfWrittenReleases(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Put(record("pw")); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(s.Dir, tempPrefix+"123")
	if err := os.MkdirAll(filepath.Join(half, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.SweepTemps(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-written release left: %v", err)
	}
	if ids, _ := s.IDs(); len(ids) != 1 {
		t.Fatalf("ids after sweep: %v", ids)
	}
}
