//go:build windows

package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The agent's own reads open with FILE_SHARE_DELETE, so moving the file
// aside (as breaking a lock does) succeeds while one of them is reading it.
func TestRenameWhileOwnReaderHasFileOpen(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "lock.json")
	if err := WriteFile(p, []byte("holder")); err != nil {
		t.Fatal(err)
	}
	f, err := openShared(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aside := filepath.Join(dir, "aside")
	if err := Rename(p, aside); err != nil {
		t.Fatalf("rename while a share-delete reader is open: %v", err)
	}
	if b, err := ReadFile(aside); err != nil || string(b) != "holder" {
		t.Fatalf("read back %q, %v", b, err)
	}
}

// A reader that has the target open blocks a replace on Windows (and under
// Wine even with FILE_SHARE_DELETE); the replace is retried and succeeds
// once the reader is done.
func TestReplaceRetriesWhileForeignReaderHasFileOpen(t *testing.T) {
	p := filepath.Join(tempDir(t), "state.json")
	if err := WriteFile(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		f.Close()
	}()
	if err := WriteFile(p, []byte("new")); err != nil {
		t.Fatalf("replace after the reader closed: %v", err)
	}
	if b, err := ReadFile(p); err != nil || string(b) != "new" {
		t.Fatalf("read back %q, %v", b, err)
	}
}
