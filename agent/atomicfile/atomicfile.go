package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// TempPrefix starts the name of every temp file this package creates.
const TempPrefix = ".gsd-tmp-"

// CreateTemp opens a new temp file next to final. The caller writes it and
// then calls Commit or Discard.
func CreateTemp(final string) (*os.File, error) {
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, TempPrefix+filepath.Base(final)+"-*")
}

// Commit syncs and closes f and renames it over final.
func Commit(f *os.File, final string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := replace(f.Name(), final); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("rename into %s: %w", final, err)
	}
	return syncDir(filepath.Dir(final))
}

// Discard closes and removes an uncommitted temp file.
func Discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// WriteFile atomically replaces path with data.
func WriteFile(path string, data []byte) error {
	f, err := CreateTemp(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		Discard(f)
		return err
	}
	return Commit(f, path)
}

// SweepTemps removes temp files under root left by a run that died before
// Commit or Discard. Call it only while holding the host lock, so no live
// writer's temp file is taken.
func SweepTemps(root string) (removed []string, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), TempPrefix) {
			if err := os.Remove(path); err != nil {
				return err
			}
			removed = append(removed, path)
		}
		return nil
	})
	return removed, err
}

// RemoveTree deletes path and everything below it, like os.RemoveAll, but
// one entry at a time with os.Remove: under Wine, os.RemoveAll fails with
// "Invalid function" because Wine lacks the POSIX-semantics delete that Go
// uses for it, while a plain delete works.
func RemoveTree(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := RemoveTree(filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Rename moves from to a new name in the same directory, retrying briefly
// on Windows while another process's handle blocks it (see replace).
func Rename(from, to string) error {
	if err := rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// Dirs lists, sorted, the names of the folders in dir that match; a dir
// that does not exist has none.
func Dirs(dir string, match func(name string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && match(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
