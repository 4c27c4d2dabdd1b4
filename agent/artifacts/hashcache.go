package artifacts

import (
	"os"
	"sync"
	"time"
)

// HashCache avoids rehashing unchanged files: a file is rehashed whenever
// its size or modification time changes. The zero value is ready; a nil
// *HashCache hashes every time.
type HashCache struct {
	mu sync.Mutex
	m  map[string]hashEntry
}

type hashEntry struct {
	size int64
	mod  time.Time
	sum  string
}

// Sum returns the SHA-256 of the file at path.
func (c *HashCache) Sum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if c == nil {
		return FileSHA256(path)
	}
	c.mu.Lock()
	e, ok := c.m[path]
	c.mu.Unlock()
	if ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.sum, nil
	}
	sum, err := FileSHA256(path)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]hashEntry{}
	}
	c.m[path] = hashEntry{size: fi.Size(), mod: fi.ModTime(), sum: sum}
	c.mu.Unlock()
	return sum, nil
}
