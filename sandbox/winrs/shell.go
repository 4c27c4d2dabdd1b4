package winrs

import (
	"sync"
	"sync/atomic"

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
	stdinClosed bool
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
