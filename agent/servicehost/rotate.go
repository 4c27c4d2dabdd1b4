package servicehost

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// RotatingFile is an append-only log that moves itself aside once it would
// grow past max bytes: name -> name.1 -> name.2 ... keeping keep old files.
type RotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
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
// alone is longer than max; no file ever exceeds max.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if r.f == nil {
			return written, os.ErrClosed
		}
		room := r.max - r.size
		if room <= 0 {
			if err := r.rotate(); err != nil {
				return written, err
			}
			continue
		}
		cut := len(p)
		if int64(cut) > room {
			cut = bytes.LastIndexByte(p[:room], '\n') + 1
			if cut == 0 {
				if r.size > 0 {
					if err := r.rotate(); err != nil {
						return written, err
					}
					continue
				}
				cut = int(room)
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

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	os.Remove(fmt.Sprintf("%s.%d", r.path, r.keep))
	for i := r.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", r.path, i), fmt.Sprintf("%s.%d", r.path, i+1))
	}
	if r.keep >= 1 {
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			return err
		}
	} else {
		os.Remove(r.path)
	}
	return r.open()
}

// Close closes the current file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
