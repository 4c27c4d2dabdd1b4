package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "sub", "state.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("got %q, %v; want %q", got, err, content)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("want only state.json, got %v", entries)
	}
}

func TestSweepTempsRemovesOnlyTemps(t *testing.T) {
	dir := tempDir(t)
	f, err := CreateTemp(filepath.Join(dir, "a", "x.exe"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // abandoned, as by a killed agent
	keep := filepath.Join(dir, "a", "keep.exe")
	os.WriteFile(keep, []byte("k"), 0o644)
	removed, err := SweepTemps(dir)
	if err != nil || len(removed) != 1 || removed[0] != f.Name() {
		t.Fatalf("removed %v, %v", removed, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatal("swept a regular file")
	}
}

func TestRemoveTree(t *testing.T) {
	dir := tempDir(t)
	root := filepath.Join(dir, "x")
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "b", "f"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(root, "g"), []byte("1"), 0o644)
	if err := RemoveTree(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
	if err := RemoveTree(root); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

// tempDir avoids t.TempDir, whose cleanup fails under Wine (see RemoveTree).
func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "atomicfile-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveTree(dir) })
	return dir
}
