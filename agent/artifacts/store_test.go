package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-deploy/gsd/agent/internal/testfs"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadCommitsOnlyVerifiedContent(t *testing.T) {
	store := Store{Dir: testfs.TempDir(t)}
	good := []byte("the real binary")
	cases := []struct {
		name  string
		sha   string
		parts [][]byte
		want  error
	}{
		{"short", sum(good), [][]byte{good[:5]}, ErrSizeMismatch},
		{"wrong hash", sum([]byte("other")), [][]byte{[]byte("other bytes....")}, ErrHashMismatch},
		{"corrupted", sum(good), [][]byte{[]byte("the REAL binary")}, ErrHashMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up, err := store.Begin(c.sha, int64(len(good)), "x.exe")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.parts {
				up.Write(p)
			}
			if _, err := up.Commit(); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if list, _ := store.List(); len(list) != 0 {
				t.Fatalf("stored %v", list)
			}
			entries, _ := os.ReadDir(filepath.Join(store.Dir, c.sha))
			if len(entries) != 0 {
				t.Fatalf("left %v behind", entries)
			}
		})
	}
	up, _ := store.Begin(sum(good), int64(len(good)), "x.exe")
	if _, err := up.Write(append(good, '!')); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("overlong write: %v", err)
	}
	up.Abort()
	up, _ = store.Begin(sum(good), int64(len(good)), "x.exe")
	up.Write(good)
	path, err := up.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := FileSHA256(path); got != sum(good) {
		t.Fatalf("stored content hashes to %s", got)
	}
	if found, err := store.Find(sum(good)); err != nil || found != path {
		t.Fatalf("find: %s %v", found, err)
	}
}

func TestBeginRefusesBadNamesBeforeWriting(t *testing.T) {
	store := Store{Dir: testfs.TempDir(t)}
	for _, name := range []string{"../x.exe", "CON", "x.exe:ads", "x.exe."} {
		if _, err := store.Begin(sum(nil), 0, name); err == nil {
			t.Errorf("accepted %q", name)
		}
	}
	if _, err := store.Begin("../../etc", 0, "x.exe"); err == nil {
		t.Error("accepted a path as hash")
	}
	if entries, _ := os.ReadDir(store.Dir); len(entries) != 0 {
		t.Fatalf("wrote %v", entries)
	}
}

// A file nobody staged, sitting where an artifact belongs, must never be
// returned as that artifact nor taken for an already staged one.
func TestPlantedFileIsNeitherFoundNorTakenAsStaged(t *testing.T) {
	store := Store{Dir: testfs.TempDir(t), Hashes: &HashCache{}}
	good := []byte("the real binary")
	dir := filepath.Join(store.Dir, sum(good))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "evil.exe"), []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := store.Find(sum(good)); err == nil {
		t.Fatalf("Find returned the planted file %s", p)
	}
	if list, _ := store.List(); len(list) != 0 {
		t.Fatalf("List reports the planted artifact: %v", list)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.exe"), []byte("planted at the target"), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := store.Begin(sum(good), int64(len(good)), "x.exe")
	if err != nil {
		t.Fatal(err)
	}
	if up.AlreadyPresent() {
		t.Fatal("a mismatching file at the target was taken as already present")
	}
	up.Write(good)
	path, err := up.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := FileSHA256(path); got != sum(good) {
		t.Fatalf("stored content hashes to %s", got)
	}
	if found, err := store.Find(sum(good)); err != nil || found != path {
		t.Fatalf("find after staging: %s %v", found, err)
	}
	// Changed behind the cache's back (same path, new content and time).
	if err := os.WriteFile(path, []byte("tampered after staging"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := store.Find(sum(good)); err == nil {
		t.Fatalf("Find returned a tampered file %s", p)
	}
}
