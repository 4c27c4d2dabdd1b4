package winrs

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/winecmd"
)

// Runner starts commands; *winecmd.Host is the real one.
type Runner interface {
	Start(winecmd.Command) (winecmd.Process, error)
}

type shell struct {
	// lastUsed is the time of the latest request on the shell, in Unix
	// nanoseconds, for reaping shells their client forgot.
	lastUsed atomic.Int64
	id       string
	owner    string
	dir      string
	env      map[string]string
	mu       sync.Mutex
	commands map[string]*command
	// starting holds CommandIds whose process is being started, so a
	// duplicate is refused before it runs.
	starting map[string]bool
	// ended is set once the shell is deleted or reaped: a command whose
	// start finishes after that is ended at once.
	ended bool
}

// command is one running (or finished, not yet fully received) command.
type command struct {
	id     string
	proc   winecmd.Process
	stdout *stream
	stderr *stream
	// wake is signalled whenever output arrives or the command ends.
	wake chan struct{}
	done chan struct{}
	code int
	// endReported tracks the End="true" markers already sent per stream.
	mu          sync.Mutex
	stdoutEnded bool
	stderrEnded bool
	stdin       *stdinQueue
}

func (c *command) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *command) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// streamLimit bounds what a command may have buffered per stream before
// its writes block: output a client does not Receive holds the process
// back, as a full pipe does on Windows, instead of filling memory.
const streamLimit = 1 << 20

// stream is a bounded output buffer between a process and Receive.
type stream struct {
	mu     sync.Mutex
	space  *sync.Cond
	buf    []byte
	closed bool
	cmd    *command
}

func newStream(c *command) *stream {
	s := &stream{cmd: c}
	s.space = sync.NewCond(&s.mu)
	return s
}

func (s *stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		s.mu.Lock()
		for len(s.buf) >= streamLimit && !s.closed {
			s.space.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			// The command was deleted; the process gets a broken pipe.
			return n, errStreamClosed
		}
		k := min(len(p), streamLimit-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		s.mu.Unlock()
		s.cmd.notify()
		n += k
		p = p[k:]
	}
	return n, nil
}

// take removes up to max bytes.
func (s *stream) take(max int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := min(max, len(s.buf))
	if k == 0 {
		return nil
	}
	out := append([]byte(nil), s.buf[:k]...)
	s.buf = append(s.buf[:0], s.buf[k:]...)
	s.space.Broadcast()
	return out
}

func (s *stream) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// discard drops everything and makes further writes fail.
func (s *stream) discard() {
	s.mu.Lock()
	s.closed = true
	s.buf = nil
	s.space.Broadcast()
	s.mu.Unlock()
}

type streamError string

func (e streamError) Error() string { return string(e) }

const errStreamClosed = streamError("output stream closed by the client")

// stdinLimit bounds the input queued for a command that does not read it
// yet, as a pipe's buffer does on Windows.
const stdinLimit = 1 << 20

// errSendTimedOut: the command did not take its input within the Send's
// OperationTimeout.
var errSendTimedOut = errors.New("stdin is full")

// stdinQueue is a command's input: Sends queue data and return, and one
// goroutine writes it to the process, so a process that never reads its
// input holds back only further Sends, each for at most its
// OperationTimeout, never a request for ever.
type stdinQueue struct {
	mu   sync.Mutex
	bufs [][]byte
	size int
	// end: the client sent End="true"; later input is ignored.
	end bool
	// dead: the process no longer reads; input is dropped, as Windows
	// drops input to a process that has exited.
	dead bool
	// room is closed and replaced whenever the queue shrinks.
	room chan struct{}
	work chan struct{}
}

func newStdinQueue(w io.WriteCloser) *stdinQueue {
	q := &stdinQueue{room: make(chan struct{}), work: make(chan struct{}, 1)}
	go q.run(w)
	return q
}

func (q *stdinQueue) wake() {
	select {
	case q.work <- struct{}{}:
	default:
	}
}

func (q *stdinQueue) shrunk() {
	close(q.room)
	q.room = make(chan struct{})
}

// put queues data (and the end of input) whole, or not at all when the
// queue stays full until the timeout or ctx ends.
func (q *stdinQueue) put(ctx context.Context, data []byte, end bool, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	q.mu.Lock()
	for {
		if q.end || q.dead {
			q.mu.Unlock()
			return nil
		}
		if q.size == 0 || q.size+len(data) <= stdinLimit {
			break
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-timer.C:
			return errSendTimedOut
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	if len(data) > 0 {
		q.bufs = append(q.bufs, append([]byte(nil), data...))
		q.size += len(data)
	}
	q.end = end
	q.mu.Unlock()
	q.wake()
	return nil
}

// kill drops what is queued and whatever comes later.
func (q *stdinQueue) kill() {
	q.mu.Lock()
	q.dead = true
	q.bufs, q.size = nil, 0
	q.shrunk()
	q.mu.Unlock()
	q.wake()
}

func (q *stdinQueue) run(w io.WriteCloser) {
	for {
		q.mu.Lock()
		for len(q.bufs) == 0 && !q.end && !q.dead {
			q.mu.Unlock()
			<-q.work
			q.mu.Lock()
		}
		if q.dead {
			q.mu.Unlock()
			return
		}
		if len(q.bufs) == 0 { // end of input, all written
			q.mu.Unlock()
			_ = w.Close()
			return
		}
		b := q.bufs[0]
		q.mu.Unlock()
		_, err := w.Write(b)
		q.mu.Lock()
		if len(q.bufs) > 0 && !q.dead {
			q.bufs[0] = nil
			q.bufs = q.bufs[1:]
			q.size -= len(b)
		}
		q.shrunk()
		if err != nil {
			q.dead = true
			q.bufs, q.size = nil, 0
		}
		q.mu.Unlock()
	}
}
