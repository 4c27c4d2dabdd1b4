package winrs

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FaultSettings are the failures a host injects. The zero value injects
// nothing, and that is the default.
type FaultSettings struct {
	// CutAfterBytes closes each new connection once this many bytes have
	// crossed it (both directions counted); 0 never cuts.
	CutAfterBytes int64 `json:"cut_after_bytes,omitempty"`
	// DelayMS delays every response.
	DelayMS int `json:"delay_ms,omitempty"`
	// Refuse stops listening: connections are refused until it is unset.
	Refuse bool `json:"refuse,omitempty"`
	// Status500 answers every request with a bare HTTP 500.
	Status500 bool `json:"status_500,omitempty"`
	// Drop closes every open connection at once, and each new one as it
	// comes, while set: a network that drops the host's traffic. The
	// shells and the commands in them live on, as on Windows.
	Drop bool `json:"drop,omitempty"`
}

// Faults holds a host's current settings. When File is set, the settings
// are re-read from that JSON file whenever it changes, so a test or an
// operator switches faults on a running host by writing the file; a
// missing file means no faults.
type Faults struct {
	File string

	mu      sync.Mutex
	cur     FaultSettings
	modTime time.Time
	size    int64
	checked time.Time
}

// SetFile switches to reading settings from path, safely while serving.
func (f *Faults) SetFile(path string) {
	f.mu.Lock()
	f.File, f.checked = path, time.Time{}
	f.mu.Unlock()
}

// Set replaces the settings (for in-process use).
func (f *Faults) Set(s FaultSettings) {
	f.mu.Lock()
	f.cur = s
	f.mu.Unlock()
}

// Current returns the settings in force.
func (f *Faults) Current() FaultSettings {
	if f == nil {
		return FaultSettings{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.File == "" || time.Since(f.checked) < 100*time.Millisecond {
		return f.cur
	}
	f.checked = time.Now()
	st, err := os.Stat(f.File)
	if errors.Is(err, os.ErrNotExist) {
		f.cur, f.modTime, f.size = FaultSettings{}, time.Time{}, 0
		return f.cur
	}
	if err != nil || (st.ModTime().Equal(f.modTime) && st.Size() == f.size) {
		return f.cur
	}
	b, err := os.ReadFile(f.File)
	var s FaultSettings
	if err == nil && json.Unmarshal(b, &s) == nil {
		f.cur, f.modTime, f.size = s, st.ModTime(), st.Size()
	}
	return f.cur
}

// WriteFaultFile writes settings where a host's Faults reads them.
func WriteFaultFile(path string, s FaultSettings) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Listen returns a listener on addr that applies f: it stops accepting
// (closing its socket, so clients get "connection refused") while Refuse
// is set, and wraps connections to cut them after CutAfterBytes.
func (f *Faults) Listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	// Re-listening after a refusal must get the same port, even for ":0".
	fl := &faultListener{faults: f, network: network, addr: l.Addr().String(), inner: l, conns: make(chan acceptResult), stop: make(chan struct{}), open: map[*trackedConn]bool{}}
	go fl.run()
	go fl.dropper()
	return fl, nil
}

// trackedConn is an accepted connection the listener can close on Drop.
type trackedConn struct {
	net.Conn
	l    *faultListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// dropper closes every open connection while Drop is set.
func (l *faultListener) dropper() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if !l.faults.Current().Drop {
			continue
		}
		l.mu.Lock()
		open := make([]*trackedConn, 0, len(l.open))
		for c := range l.open {
			open = append(open, c)
		}
		l.mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	}
}

type acceptResult struct {
	c   net.Conn
	err error
}

type faultListener struct {
	faults  *Faults
	network string
	addr    string
	stop    chan struct{}
	once    sync.Once
	conns   chan acceptResult

	mu    sync.Mutex
	inner net.Listener
	open  map[*trackedConn]bool
}

func (l *faultListener) run() {
	for {
		l.mu.Lock()
		inner := l.inner
		l.mu.Unlock()
		if inner == nil {
			// Refusing: wait until the fault is cleared, then listen again.
			select {
			case <-l.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if l.faults.Current().Refuse {
				continue
			}
			nl, err := net.Listen(l.network, l.addr)
			if err != nil {
				continue
			}
			l.mu.Lock()
			l.inner = nl
			l.mu.Unlock()
			continue
		}
		done := make(chan struct{})
		go func() {
			// Watch for Refuse while Accept blocks.
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-l.stop:
					return
				case <-t.C:
					if l.faults.Current().Refuse {
						l.mu.Lock()
						if l.inner == inner {
							l.inner = nil
							inner.Close()
						}
						l.mu.Unlock()
						return
					}
				}
			}
		}()
		c, err := inner.Accept()
		close(done)
		if err != nil {
			l.mu.Lock()
			refusing := l.inner == nil
			l.mu.Unlock()
			if refusing {
				continue
			}
			select {
			case l.conns <- acceptResult{err: err}:
			case <-l.stop:
			}
			return
		}
		cur := l.faults.Current()
		if cur.Drop {
			c.Close()
			continue
		}
		if n := cur.CutAfterBytes; n > 0 {
			c = &cutConn{Conn: c, left: n}
		}
		tc := &trackedConn{Conn: c, l: l}
		l.mu.Lock()
		l.open[tc] = true
		l.mu.Unlock()
		c = tc
		select {
		case l.conns <- acceptResult{c: c}:
		case <-l.stop:
			c.Close()
			return
		}
	}
}

func (l *faultListener) Accept() (net.Conn, error) {
	select {
	case r := <-l.conns:
		return r.c, r.err
	case <-l.stop:
		return nil, net.ErrClosed
	}
}

func (l *faultListener) Close() error {
	l.once.Do(func() { close(l.stop) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inner != nil {
		err := l.inner.Close()
		l.inner = nil
		return err
	}
	return nil
}

func (l *faultListener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inner != nil {
		return l.inner.Addr()
	}
	a, _ := net.ResolveTCPAddr(l.network, l.addr)
	return a
}

// cutConn closes itself after a byte budget, mid-message if need be:
// that is the failure being simulated.
type cutConn struct {
	net.Conn
	left int64
}

func (c *cutConn) spend(n int) {
	if atomic.AddInt64(&c.left, -int64(n)) <= 0 {
		c.Conn.Close()
	}
}

func (c *cutConn) Read(p []byte) (int, error) {
	if l := atomic.LoadInt64(&c.left); l <= 0 {
		return 0, net.ErrClosed
	} else if int64(len(p)) > l {
		p = p[:l]
	}
	n, err := c.Conn.Read(p)
	c.spend(n)
	return n, err
}

func (c *cutConn) Write(p []byte) (int, error) {
	l := atomic.LoadInt64(&c.left)
	if l <= 0 {
		return 0, net.ErrClosed
	}
	if int64(len(p)) > l {
		n, _ := c.Conn.Write(p[:l])
		c.spend(n)
		return n, net.ErrClosed
	}
	n, err := c.Conn.Write(p)
	c.spend(n)
	return n, err
}
