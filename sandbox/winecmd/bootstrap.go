package winecmd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/bootstrap"
)

// bootstrapProcess performs bootstrap.Script natively: the same contract,
// the same output and exit codes, without PowerShell. Wine keeps no
// access lists, so the root's owner is its Unix owner, as Wine reports
// it: a root another Unix user owns is moved aside, as the script moves
// aside one that neither Administrators nor SYSTEM own.
type bootstrapProcess struct {
	stdin *io.PipeWriter
	done  chan struct{}
	code  int
}

func (h *Host) startBootstrap(p bootstrap.Params, c Command) (Process, error) {
	r, w := io.Pipe()
	bp := &bootstrapProcess{stdin: w, done: make(chan struct{})}
	stdout, stderr := orDiscard(c.Stdout), orDiscard(c.Stderr)
	go func() {
		defer close(bp.done)
		sum, err := h.receiveFile(p, r, stdout)
		switch {
		case err == errMismatch:
			fmt.Fprintf(stderr, "gsd-bootstrap: sha256 mismatch: want %s, got %s\r\n", p.SHA256, sum)
			bp.code = bootstrap.ExitHashMismatch
		case err != nil:
			fmt.Fprintf(stderr, "gsd-bootstrap: %v\r\n", err)
			bp.code = bootstrap.ExitFailed
		default:
			fmt.Fprintf(stdout, "%s%s\r\n", bootstrap.OKPrefix, sum)
			bp.code = bootstrap.ExitOK
		}
		// Like PowerShell, stop reading at exit; the writer side gets an
		// error instead of blocking.
		r.CloseWithError(io.ErrClosedPipe)
	}()
	return bp, nil
}

var errMismatch = fmt.Errorf("sha256 mismatch")

func (h *Host) receiveFile(p bootstrap.Params, in io.Reader, notes io.Writer) (string, error) {
	if err := h.secureRoot(p, notes); err != nil {
		return "", err
	}
	dest, err := h.UnixPath(p.Path)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if have, err := artifacts.FileSHA256(dest); err == nil {
		if have == p.SHA256 {
			_, err := io.Copy(io.Discard, in)
			return have, err
		}
		fmt.Fprintf(notes, "%s%s had SHA-256 %s, not %s\r\n", bootstrap.NotePrefix, p.Path, have, p.SHA256)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".*.partial")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	hash := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, hash), in); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(hash.Sum(nil))
	if sum != p.SHA256 {
		return sum, errMismatch
	}
	return sum, os.Rename(tmp.Name(), dest)
}

// secureRoot moves aside a root that another user owns, and makes sure
// the root exists.
func (h *Host) secureRoot(p bootstrap.Params, notes io.Writer) error {
	root, err := h.UnixPath(p.Root)
	if err != nil {
		return err
	}
	if uid, ok := ownerUID(root); ok && uid != os.Geteuid() {
		aside := fmt.Sprintf("%s.untrusted-%d", p.Root, time.Now().UnixNano())
		unixAside, err := h.UnixPath(aside)
		if err != nil {
			return err
		}
		if err := os.Rename(root, unixAside); err != nil {
			return err
		}
		fmt.Fprintf(notes, "%smoved %s aside to %s, unused: its owner unix user %d could have put anything in it\r\n", bootstrap.NotePrefix, p.Root, aside, uid)
	}
	return os.MkdirAll(root, 0o755)
}

func (b *bootstrapProcess) Stdin() io.WriteCloser { return b.stdin }

func (b *bootstrapProcess) Wait() int {
	<-b.done
	return b.code
}

func (b *bootstrapProcess) Signal(Signal) {
	b.stdin.CloseWithError(fmt.Errorf("terminated"))
}

// UnixPath maps an absolute Windows path to the file it names in the
// prefix, following the drive letter's dosdevices link and matching each
// component case-insensitively as Windows would. "." and ".." components,
// alternate data streams and device paths are refused, and so is any path
// that, links followed, leaves the prefix's drive_c: Wine's defaults link
// Z: to / and profile folders to the Unix home directory, and the
// bootstrap must never write to the real machine through them.
func (h *Host) UnixPath(win string) (string, error) {
	if len(win) < 3 || win[1] != ':' || (win[2] != '\\' && win[2] != '/') {
		return "", fmt.Errorf("%q is not an absolute Windows path", win)
	}
	drive := strings.ToLower(win[:1])
	root, err := filepath.EvalSymlinks(filepath.Join(h.Prefix, "dosdevices", drive+":"))
	if err != nil {
		return "", fmt.Errorf("drive %s: is not mapped in this host", strings.ToUpper(drive))
	}
	jail, err := filepath.EvalSymlinks(filepath.Join(h.Prefix, "drive_c"))
	if err != nil {
		return "", fmt.Errorf("the host's prefix has no drive_c: %w", err)
	}
	path := root
	for _, part := range strings.FieldsFunc(win[3:], func(r rune) bool { return r == '\\' || r == '/' }) {
		if part == "." || part == ".." || strings.ContainsAny(part, ":*?\"<>|") {
			return "", fmt.Errorf("%q: component %q is not allowed", win, part)
		}
		path = filepath.Join(path, matchCase(path, part))
	}
	if err := within(jail, path); err != nil {
		return "", fmt.Errorf("%q: %w", win, err)
	}
	return path, nil
}

// within checks that path, with the links of its deepest existing part
// resolved, lies inside dir (itself resolved). The rest of path does not
// exist yet and has no "." or ".." components, so it cannot climb out.
func within(dir, path string) error {
	existing, rest := path, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", existing, err)
	}
	full := filepath.Join(resolved, rest)
	rel, err := filepath.Rel(dir, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("leads outside the host's C: drive (to %s); the sandbox only writes inside the host's prefix", full)
	}
	return nil
}

// matchCase returns the existing entry of dir that equals name ignoring
// case, or name itself.
func matchCase(dir, name string) string {
	if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
		return name
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return name
	}
	for _, e := range entries {
		if strings.EqualFold(e.Name(), name) {
			return e.Name()
		}
	}
	return name
}
