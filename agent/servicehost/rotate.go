package servicehost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// RotatingFile is an append-only log that moves itself aside once it would
// grow past max bytes: name -> name.1 -> name.2 ... keeping keep old files.
// If a rotation fails (an old file is held open by a reader on Windows, a
// full or read-only directory), logging goes on in the current file, past
// max, and the rotation is tried again on the next write.
type RotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
	// closed is set by Close; f is also nil while a failed reopen awaits
	// the next write's retry.
	closed bool
	// OnRotateError, if set, hears about a failed rotation (the service
	// host logs it to wrapper.log). It runs with the file locked, so it
	// must not write to this same file.
	OnRotateError func(error)
}

// OpenRotating opens (appending to) path.
func OpenRotating(path string, max int64, keep int) (*RotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	r := &RotatingFile{path: path, max: max, keep: keep}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write appends p, rotating whenever the file would pass max. A write is
// split at the last newline that fits, so lines stay whole unless one line
// alone is longer than max; no file exceeds max unless a rotation failed.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	written := 0
	// overflow is set once a rotation failed during this write: the rest
	// goes to the current file, and the next write tries again.
	overflow := false
	for len(p) > 0 {
		if r.f == nil {
			if r.closed {
				return written, os.ErrClosed
			}
			if err := r.open(); err != nil {
				return written, err
			}
		}
		cut := len(p)
		if !overflow {
			room := r.max - r.size
			if room <= 0 {
				overflow = !r.tryRotate()
				continue
			}
			if int64(cut) > room {
				cut = bytes.LastIndexByte(p[:room], '\n') + 1
				if cut == 0 {
					if r.size > 0 {
						overflow = !r.tryRotate()
						continue
					}
					cut = int(room)
				}
			}
		}
		n, err := r.f.Write(p[:cut])
		r.size += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[cut:]
	}
	return written, nil
}

// tryRotate rotates and reports whether that worked; on failure the
// current file is open again (or reopened at the next write).
func (r *RotatingFile) tryRotate() bool {
	err := r.rotate()
	if err == nil {
		return true
	}
	if r.OnRotateError != nil {
		r.OnRotateError(fmt.Errorf("rotating %s: %w; writing on past the size limit, will retry", r.path, err))
	}
	return false
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		r.f = nil
		return err
	}
	r.f = nil
	os.Remove(fmt.Sprintf("%s.%d", r.path, r.keep))
	for i := r.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", r.path, i), fmt.Sprintf("%s.%d", r.path, i+1))
	}
	var moveErr error
	if r.keep >= 1 {
		moveErr = os.Rename(r.path, r.path+".1")
	} else {
		moveErr = os.Remove(r.path)
	}
	// Open the (new or, if the move failed, the old) file either way.
	if err := r.open(); err != nil {
		return errors.Join(moveErr, err)
	}
	return moveErr
}

// Close closes the current file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
