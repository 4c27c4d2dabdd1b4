package releases

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
	"github.com/gsd-deploy/gsd/agent/seal"
)

// Record is one release as the store takes and gives it back.
type Record struct {
	Kind string
	Name string
	// Spec is the kind's spec with no secret and no file content.
	Spec json.RawMessage
	// Files are file contents by their SHA-256 (hex).
	Files map[string][]byte
	// Secrets are the values Spec needs filled in, by key.
	Secrets map[string]string
}

// meta is release.json.
type meta struct {
	Schema  int             `json:"schema"`
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Name    string          `json:"name"`
	Staged  time.Time       `json:"staged"`
	Spec    json.RawMessage `json:"spec"`
	Files   []string        `json:"files,omitempty"`
	Secrets bool            `json:"secrets,omitempty"`
}

// Store is the release folder of one host.
type Store struct {
	Dir    string
	Sealer seal.Sealer
	// KeyFile holds the random key that mixes secrets into ids, so an id
	// lets no one check a guess at a secret.
	KeyFile string
}

var idRE = regexp.MustCompile(`^r-[0-9a-f]{20}$`)

// ValidID reports whether id has the form of a release id.
func ValidID(id string) bool { return idRE.MatchString(id) }

const tempPrefix = ".gsd-tmp-release-"

// Put stores r and returns its id; existed says the same release was
// there already (and so nothing was written).
func (s Store) Put(r Record) (id string, existed bool, err error) {
	id, err = s.id(r)
	if err != nil {
		return "", false, err
	}
	final := filepath.Join(s.Dir, id)
	if _, err := s.meta(id); err == nil {
		return id, true, nil
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return "", false, err
	}
	tmp, err := os.MkdirTemp(s.Dir, tempPrefix)
	if err != nil {
		return "", false, err
	}
	defer atomicfile.RemoveTree(tmp)
	m := meta{Schema: 1, ID: id, Kind: r.Kind, Name: r.Name, Staged: time.Now().UTC(), Spec: r.Spec}
	if len(r.Files) > 0 {
		if err := os.Mkdir(filepath.Join(tmp, "files"), 0o755); err != nil {
			return "", false, err
		}
	}
	for sum, b := range r.Files {
		if hexSHA(b) != sum {
			return "", false, fmt.Errorf("file content does not match its SHA-256 %s", sum)
		}
		if err := atomicfile.WriteFile(filepath.Join(tmp, "files", sum), b); err != nil {
			return "", false, err
		}
		m.Files = append(m.Files, sum)
	}
	sort.Strings(m.Files)
	if len(r.Secrets) > 0 {
		plain, err := json.Marshal(r.Secrets)
		if err != nil {
			return "", false, err
		}
		sealed, err := s.Sealer.Seal(plain)
		if err != nil {
			return "", false, err
		}
		if err := atomicfile.WriteFile(filepath.Join(tmp, "secrets.sealed"), sealed); err != nil {
			return "", false, err
		}
		m.Secrets = true
	}
	// Compact, so the spec reads back byte for byte as it was hashed.
	b, err := json.Marshal(m)
	if err != nil {
		return "", false, err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, "release.json"), append(b, '\n')); err != nil {
		return "", false, err
	}
	// A leftover of a run that died after its rename but before its
	// release.json was readable is replaced.
	if err := atomicfile.RemoveTree(final); err != nil {
		return "", false, err
	}
	if err := atomicfile.Rename(tmp, final); err != nil {
		return "", false, err
	}
	return id, false, nil
}

// Get returns a release whole: spec, file contents and opened secrets.
func (s Store) Get(id string) (Record, error) {
	m, err := s.meta(id)
	if err != nil {
		return Record{}, err
	}
	r := Record{Kind: m.Kind, Name: m.Name, Spec: m.Spec, Files: map[string][]byte{}}
	for _, sum := range m.Files {
		b, err := atomicfile.ReadFile(filepath.Join(s.Dir, id, "files", sum))
		if err != nil {
			return Record{}, fmt.Errorf("release %s: %w", id, err)
		}
		if hexSHA(b) != sum {
			return Record{}, fmt.Errorf("release %s: file %s is damaged (its SHA-256 changed)", id, sum)
		}
		r.Files[sum] = b
	}
	if m.Secrets {
		sealed, err := atomicfile.ReadFile(filepath.Join(s.Dir, id, "secrets.sealed"))
		if err != nil {
			return Record{}, fmt.Errorf("release %s: %w", id, err)
		}
		plain, err := s.Sealer.Open(sealed)
		if err != nil {
			return Record{}, fmt.Errorf("release %s: %w", id, err)
		}
		if err := json.Unmarshal(plain, &r.Secrets); err != nil {
			return Record{}, fmt.Errorf("release %s: sealed secrets: %w", id, err)
		}
	}
	return r, nil
}

// Spec returns a release's redacted spec, without opening its secrets.
func (s Store) Spec(id string) (json.RawMessage, error) {
	m, err := s.meta(id)
	if err != nil {
		return nil, err
	}
	return m.Spec, nil
}

// StagedAt is when the release was stored.
func (s Store) StagedAt(id string) (time.Time, error) {
	m, err := s.meta(id)
	if err != nil {
		return time.Time{}, err
	}
	return m.Staged, nil
}

// ErrNotFound is returned for an id the store does not hold.
var ErrNotFound = errors.New("no such release on this host")

func (s Store) meta(id string) (meta, error) {
	if !ValidID(id) {
		return meta{}, fmt.Errorf("%q is not a release id", id)
	}
	b, err := atomicfile.ReadFile(filepath.Join(s.Dir, id, "release.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return meta{}, fmt.Errorf("release %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return meta{}, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, fmt.Errorf("release %s: %w", id, err)
	}
	if m.ID != id {
		return meta{}, fmt.Errorf("release %s: its release.json names %s", id, m.ID)
	}
	return m, nil
}

// IDs lists the releases held, sorted.
func (s Store) IDs() ([]string, error) { return atomicfile.Dirs(s.Dir, ValidID) }

// Remove deletes a release.
func (s Store) Remove(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%q is not a release id", id)
	}
	return atomicfile.RemoveTree(filepath.Join(s.Dir, id))
}

// SweepTemps removes half-written releases of a run that died; call it
// with the host lock held.
func (s Store) SweepTemps() error {
	temps, err := atomicfile.Dirs(s.Dir, func(name string) bool { return strings.HasPrefix(name, tempPrefix) })
	if err != nil {
		return err
	}
	for _, name := range temps {
		if err := atomicfile.RemoveTree(filepath.Join(s.Dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// id hashes everything a release is: kind, name, spec, file contents (by
// their hashes, which the spec names) and the secrets, those through
// HMAC under the host's own key.
func (s Store) id(r Record) (string, error) {
	var keyed []byte
	if len(r.Secrets) > 0 {
		// Secrets count through the host's own key, so an id lets no
		// one check a guess at a secret; a release without secrets has
		// the same id on every host.
		key, err := s.key()
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		secrets, _ := json.Marshal(r.Secrets) // maps marshal with sorted keys
		mac.Write(secrets)
		keyed = mac.Sum(nil)
	}
	h := sha256.New()
	fmt.Fprintf(h, "gsd-release-1\n%s\n%s\n%s\n", r.Kind, r.Name, r.Spec)
	sums := make([]string, 0, len(r.Files))
	for sum := range r.Files {
		sums = append(sums, sum)
	}
	sort.Strings(sums)
	fmt.Fprintf(h, "%s\n%x\n", strings.Join(sums, ","), keyed)
	return "r-" + hex.EncodeToString(h.Sum(nil))[:20], nil
}

func (s Store) key() ([]byte, error) {
	b, err := atomicfile.ReadFile(s.KeyFile)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.KeyFile, b); err != nil {
		return nil, err
	}
	return b, nil
}

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
