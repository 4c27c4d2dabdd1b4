package ssh_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/providers"
	"github.com/gsd-deploy/gsd/providers/internal/agentbuild"
	"github.com/gsd-deploy/gsd/providers/ssh"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// freezer is a TCP proxy that can stop forwarding, as a host that hangs
// or a link that silently drops everything would.
type freezer struct {
	l      net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{l: l}
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			go f.pipe(up, c)
			go f.pipe(c, up)
		}
	}()
	return f
}

// cut closes every connection made so far, mid-stream.
func (f *freezer) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(20 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				dst.(*net.TCPConn).CloseWrite()
			}
			return
		}
	}
}

func TestHostStopsAnswering(t *testing.T) {
	h := startSSHD(t)
	agent := agentFor(t, agentbuild.Current)
	f := newFreezer(t, h.addr)
	cfg := h.config(t)
	// known_hosts names the real address; the proxy is the same host.
	cfg.SSH.KnownHosts = ""
	cfg.SSH.HostKey = authorizedLine(h.hostKey.public)
	_, port, _ := net.SplitHostPort(f.l.Addr().String())
	cfg.SSH.Port, _ = strconv.Atoi(port)
	cfg.SSH.Timeout = 3 * time.Second

	tr, err := ssh.New(cfg, ssh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host, err := providers.Connect(bg(), "web2", tr, providers.Options{Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Facts(bg()); err != nil {
		t.Fatal(err)
	}

	f.frozen.Store(true)
	_, err = host.Facts(bg())
	wantError(t, err, transport.ErrTimeout, "host web2: gathering facts:", "no answer from "+f.l.Addr().String()+" within 3s")

	// Once the host answers again, the next call connects afresh.
	f.frozen.Store(false)
	if _, err := host.Facts(bg()); err != nil {
		t.Fatal(err)
	}
}

// TestCutMidUpload breaks the connection while an artifact streams: the
// automatic retry stages it in a new session and the host holds exactly
// the artifact.
func TestCutMidUpload(t *testing.T) {
	h := startSSHD(t)
	agent := agentFor(t, agentbuild.Current)
	f := newFreezer(t, h.addr)
	cfg := h.config(t)
	cfg.SSH.KnownHosts = ""
	cfg.SSH.HostKey = authorizedLine(h.hostKey.public)
	_, port, _ := net.SplitHostPort(f.l.Addr().String())
	cfg.SSH.Port, _ = strconv.Atoi(port)

	tr, err := ssh.New(cfg, ssh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host, err := providers.Connect(bg(), "web2", tr, providers.Options{Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Facts(bg()); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("gsd-cut-test-"), 1<<20)
	sum := sha256.Sum256(content)
	opens := 0
	art := providers.Artifact{Name: "cut.exe", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Open: func() (io.ReadCloser, error) {
		opens++
		r := io.Reader(bytes.NewReader(content))
		if opens == 1 {
			// The first attempt loses its connection after 1 MB.
			r = &cutAfter{r: r, left: 1 << 20, cut: f.cut}
		}
		return io.NopCloser(r), nil
	}}
	res, err := host.Stage(bg(), art)
	if err != nil {
		t.Fatal(err)
	}
	if opens != 2 {
		t.Errorf("opened %d times, want 2", opens)
	}
	p, err := h.wine.UnixPath(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, content) {
		t.Fatalf("staged file differs: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the artifact's directory holds %d files, want 1", len(entries))
	}
}

// cutAfter calls cut once left bytes have been read.
type cutAfter struct {
	r    io.Reader
	left int
	cut  func()
}

func (c *cutAfter) Read(p []byte) (int, error) {
	if c.left <= 0 && c.cut != nil {
		c.cut()
		c.cut = nil
		// Give the broken connection time to be noticed before more
		// input is offered.
		time.Sleep(100 * time.Millisecond)
	}
	if c.left > 0 && len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}
