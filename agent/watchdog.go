package agent

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// errControllerGone ends a session whose client stopped sending
// heartbeats: the controller died, or the connection to it is gone.
var errControllerGone = errors.New("the controller is gone: no heartbeat")

// heardReader reads the client's input ahead of the protocol decoder, so
// that the agent knows when it last heard from its client even while an
// operation keeps the decoder busy. It buffers at most maxAhead bytes; the
// client sends nothing but heartbeats while it waits for an answer, so
// only an upload (which the decoder is busy reading) comes near it.
type heardReader struct {
	mu    sync.Mutex
	cond  *sync.Cond
	buf   bytes.Buffer
	err   error
	heard atomic.Int64 // unix nanoseconds of the last byte read
}

const maxAhead = 8 << 20

func newHeardReader(in io.Reader) *heardReader {
	h := &heardReader{}
	h.cond = sync.NewCond(&h.mu)
	h.heard.Store(time.Now().UnixNano())
	go h.pump(in)
	return h
}

func (h *heardReader) pump(in io.Reader) {
	chunk := make([]byte, 64<<10)
	for {
		n, err := in.Read(chunk)
		if n > 0 {
			h.heard.Store(time.Now().UnixNano())
		}
		h.mu.Lock()
		for h.buf.Len() > maxAhead && h.err == nil {
			h.cond.Wait()
		}
		if h.err != nil {
			h.mu.Unlock()
			return
		}
		h.buf.Write(chunk[:n])
		if err != nil {
			h.err = err
		}
		h.cond.Broadcast()
		h.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (h *heardReader) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.buf.Len() == 0 && h.err == nil {
		h.cond.Wait()
	}
	if h.buf.Len() == 0 {
		return 0, h.err
	}
	n, _ := h.buf.Read(p)
	h.cond.Broadcast()
	return n, nil
}

// cut ends the input with err once what is buffered is read: the decoder
// sees err where it would wait for more.
func (h *heardReader) cut(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
	h.cond.Broadcast()
}

// silence is how long ago the client last sent anything.
func (h *heardReader) silence() time.Duration {
	return time.Since(time.Unix(0, h.heard.Load()))
}

// watchdog runs for one session: while the agent holds the lock it touches
// the lock file, so the next run can tell a live holder from a dead one;
// and once the client has announced heartbeats, it ends the session when
// the client falls silent for protocol.HeartbeatMisses intervals.
type watchdog struct {
	in       *heardReader
	interval atomic.Int64 // heartbeat interval in ns; 0 until armed
	lock     atomic.Pointer[state.Lock]
	gone     func()
	stop     chan struct{}
	stopOnce sync.Once
}

func (w *watchdog) run(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var touched time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if lk := w.lock.Load(); lk != nil && time.Since(touched) >= state.LockTouchEvery {
			if lk.Touch() == nil {
				touched = time.Now()
			}
		}
		if iv := time.Duration(w.interval.Load()); iv > 0 && w.in.silence() > protocol.HeartbeatMisses*iv {
			w.in.cut(errControllerGone)
			w.gone()
			return
		}
	}
}

func (w *watchdog) arm(args protocol.HeartbeatArgs) {
	if args.IntervalMS > 0 {
		w.interval.Store(int64(time.Duration(args.IntervalMS) * time.Millisecond))
	}
}

func (w *watchdog) close() { w.stopOnce.Do(func() { close(w.stop) }) }
