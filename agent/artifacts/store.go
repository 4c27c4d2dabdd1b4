package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Errors an upload can end with; the agent maps them to protocol codes.
var (
	ErrHashMismatch = errors.New("SHA-256 mismatch")
	ErrSizeMismatch = errors.New("size mismatch")
)

// Store is the artifact directory.
type Store struct {
	Dir string
	// Hashes, if set, saves rehashing unchanged artifacts on every lookup.
	Hashes *HashCache
}

// Path is where an artifact lives once staged.
func (s Store) Path(sha, name string) string {
	return filepath.Join(s.Dir, sha, name)
}

// Find returns the path of a staged artifact by hash. Only a file whose
// content really hashes to sha is returned: the store's directory may hold
// files nobody staged (planted by a user who could write there before the
// root was locked down, or damaged on disk), and whatever Find returns
// becomes a service's binary. Files that do not match are skipped.
func (s Store) Find(sha string) (string, error) {
	if err := protocol.ValidateSHA256(sha); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir, sha))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("artifact %s is not staged", sha)
		}
		return "", err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || isTemp(e.Name()) {
			continue
		}
		if ok, _ := s.Verify(sha, e.Name()); ok {
			return s.Path(sha, e.Name()), nil
		}
	}
	return "", fmt.Errorf("artifact %s is not staged", sha)
}

// Verify reports whether the file recorded for (sha, name) exists and its
// content hashes to sha.
func (s Store) Verify(sha, name string) (bool, error) {
	if err := protocol.ValidateSHA256(sha); err != nil {
		return false, err
	}
	if err := protocol.ValidateFileName(name); err != nil {
		return false, err
	}
	got, err := s.Hashes.Sum(s.Path(sha, name))
	if err != nil {
		return false, err
	}
	return got == sha, nil
}

// List returns the hashes of all staged artifacts, sorted.
func (s Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && protocol.ValidateSHA256(e.Name()) == nil {
			if _, err := s.Find(e.Name()); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Dirs returns the hash of every artifact directory, verified or not.
func (s Store) Dirs() ([]string, error) {
	return atomicfile.Dirs(s.Dir, func(name string) bool { return protocol.ValidateSHA256(name) == nil })
}

// StagedAt is when the artifact's directory last changed, i.e. when it was
// last staged.
func (s Store) StagedAt(sha string) (time.Time, error) {
	if err := protocol.ValidateSHA256(sha); err != nil {
		return time.Time{}, err
	}
	fi, err := os.Stat(filepath.Join(s.Dir, sha))
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Remove deletes a staged artifact. Windows refuses while a service runs
// it; the caller reports that and tries again after the next release.
func (s Store) Remove(sha string) error {
	if err := protocol.ValidateSHA256(sha); err != nil {
		return err
	}
	return atomicfile.RemoveTree(filepath.Join(s.Dir, sha))
}

// Upload is an artifact being streamed in.
type Upload struct {
	final    string
	want     string
	size     int64
	written  int64
	hash     hash.Hash
	file     *os.File
	existing bool
}

// Begin starts an upload of size bytes that must hash to sha and be stored
// as name. Hash, size and name are checked before a byte is written.
func (s Store) Begin(sha string, size int64, name string) (*Upload, error) {
	if err := protocol.ValidateSHA256(sha); err != nil {
		return nil, err
	}
	if err := protocol.ValidateFileName(name); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrSizeMismatch, size)
	}
	u := &Upload{final: s.Path(sha, name), want: sha, size: size, hash: sha256.New()}
	if _, err := os.Lstat(u.final); err == nil {
		if ok, _ := s.Verify(sha, name); ok {
			// Content addressed: the bytes are already here. The stream is
			// still consumed and verified, so a client cannot tell the
			// difference and the artifact is not rewritten; only its
			// directory's time is renewed, as it counts as newly staged
			// for pruning (see StagedAt).
			now := time.Now()
			os.Chtimes(filepath.Join(s.Dir, sha), now, now)
			u.existing = true
			return u, nil
		}
		// Something else sits where the artifact belongs; it must never
		// be mistaken for it. Remove it and stage the real bytes (the
		// rename in Commit would replace it anyway; removing it now keeps
		// Find from ever seeing it if the stream breaks).
		if err := os.Remove(u.final); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing unverified %s: %w", u.final, err)
		}
	}
	f, err := atomicfile.CreateTemp(u.final)
	if err != nil {
		return nil, err
	}
	u.file = f
	return u, nil
}

// Remaining is how many bytes the upload still expects.
func (u *Upload) Remaining() int64 { return u.size - u.written }

// AlreadyPresent reports whether the artifact was staged before.
func (u *Upload) AlreadyPresent() bool { return u.existing }

// Write appends a chunk. A chunk that would exceed the announced size fails
// the upload.
func (u *Upload) Write(p []byte) (int, error) {
	if int64(len(p)) > u.Remaining() {
		return 0, fmt.Errorf("%w: stream is longer than the announced %d bytes", ErrSizeMismatch, u.size)
	}
	u.hash.Write(p)
	if u.file != nil {
		if _, err := u.file.Write(p); err != nil {
			return 0, err
		}
	}
	u.written += int64(len(p))
	return len(p), nil
}

// Commit verifies size and hash and moves the artifact into place. On any
// error the temp file is gone and the store is as before.
func (u *Upload) Commit() (string, error) {
	if u.written != u.size {
		u.Abort()
		return "", fmt.Errorf("%w: got %d of %d bytes", ErrSizeMismatch, u.written, u.size)
	}
	got := hex.EncodeToString(u.hash.Sum(nil))
	if got != u.want {
		u.Abort()
		return "", fmt.Errorf("%w: announced %s, received %s", ErrHashMismatch, u.want, got)
	}
	if u.file == nil {
		return u.final, nil
	}
	f := u.file
	u.file = nil
	if err := atomicfile.Commit(f, u.final); err != nil {
		return "", err
	}
	return u.final, nil
}

// Abort throws away a partial upload.
func (u *Upload) Abort() {
	if u.file != nil {
		atomicfile.Discard(u.file)
		u.file = nil
	}
}

func isTemp(name string) bool {
	return len(name) >= len(atomicfile.TempPrefix) && name[:len(atomicfile.TempPrefix)] == atomicfile.TempPrefix
}

// FileSHA256 hashes a file on disk.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
