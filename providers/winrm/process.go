package winrm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	mz "github.com/masterzen/winrm"

	"github.com/gsd-deploy/gsd/providers/transport"
)

// process is one command in its own shell. Output is fetched by a
// Receive loop and input sent by a Send loop, each on its own
// connection, so a large upload and the agent's answers flow at once.
type process struct {
	t       *Transport
	shellID string
	cmdID   string
	ctx     context.Context
	cancel  context.CancelFunc

	stdin  *stdinWriter
	stdout *io.PipeReader
	stderr transport.TailBuffer

	done     chan struct{} // closed when the Receive loop ends
	exitCode int
	err      error
	finished bool // the host reported the command done

	closeOnce sync.Once
}

// Start runs commandLine through cmd.exe in a shell of its own.
func (t *Transport) Start(ctx context.Context, commandLine string) (transport.Process, error) {
	shellID, reused, err := t.shell(ctx)
	if err != nil {
		return nil, err
	}
	b, err := t.post(ctx, "starting a command", newCommandRequest(t.url, shellID, commandLine, t.params, newMessageID()))
	if err != nil && reused {
		// An idle shell may have outlived the host's IdleTimeout; one
		// made now will not have.
		t.release(shellID, false)
		if shellID, _, err = t.shell(ctx); err != nil {
			return nil, err
		}
		b, err = t.post(ctx, "starting a command", newCommandRequest(t.url, shellID, commandLine, t.params, newMessageID()))
	}
	if err != nil {
		t.release(shellID, false)
		return nil, err
	}
	cmdID, err := parseCommandID(b)
	if err != nil || cmdID == "" {
		t.release(shellID, false)
		return nil, fmt.Errorf("%s: no CommandId in the Command response (%v)", t.addr, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	r, w := io.Pipe()
	p := &process{t: t, shellID: shellID, cmdID: cmdID, ctx: pctx, cancel: cancel, stdout: r, done: make(chan struct{})}
	p.stdin = newStdinWriter(p)
	go p.receive(w)
	go p.stdin.run()
	return p, nil
}

func (p *process) Stdin() io.WriteCloser { return p.stdin }
func (p *process) Stdout() io.Reader     { return p.stdout }
func (p *process) Stderr() []byte        { return p.stderr.Bytes() }

func (p *process) Wait() (int, error) {
	<-p.done
	return p.exitCode, p.err
}

// receive polls for output until the command is done. A Receive that
// times out on the host (w:TimedOut) only means no output yet.
func (p *process) receive(stdout *io.PipeWriter) {
	defer close(p.done)
	for {
		asked := time.Now()
		b, err := p.t.post(p.ctx, "receiving output", mz.NewGetOutputRequest(p.t.url, p.shellID, p.cmdID, "stdout stderr", p.t.params))
		var f *Fault
		if errors.As(err, &f) && f.timedOut() {
			p.t.noteReceiveTimeout(time.Since(asked))
			continue
		}
		if err != nil {
			p.err = err
			stdout.CloseWithError(err)
			return
		}
		var out bytes.Buffer
		finished, code, err := parseReceive(b, &out, &p.stderr)
		if err != nil {
			p.err = fmt.Errorf("%s: unreadable Receive response: %w", p.t.addr, err)
			stdout.CloseWithError(p.err)
			return
		}
		if out.Len() > 0 {
			if _, err := stdout.Write(out.Bytes()); err != nil {
				// The reader went away (Close); the command is being
				// ended.
				p.err = err
				return
			}
		}
		if finished {
			p.finished, p.exitCode = true, code
			stdout.Close()
			return
		}
	}
}

// Close ends the command if it still runs, and returns its shell for
// reuse when the host is known to be in a clean state.
func (p *process) Close() error {
	p.closeOnce.Do(func() {
		// Terminate even a finished command, as pywinrm and masterzen
		// do: Windows keeps a command's resources until it is signalled.
		// With a context of its own, since the process's may be what
		// ended.
		ctx, cancel := context.WithTimeout(context.Background(), p.t.timeout)
		_, err := p.t.post(ctx, "terminating a command", mz.NewSignalRequest(p.t.url, p.shellID, p.cmdID, p.t.params))
		cancel()
		var f *Fault
		signalled := err == nil || errors.As(err, &f)
		p.cancel()
		p.stdout.CloseWithError(errors.New("process closed"))
		p.stdin.abort(errors.New("process closed"))
		<-p.done
		p.t.release(p.shellID, signalled && p.finished && p.err == nil)
	})
	return nil
}

// stdinWriter buffers what the caller writes and lets one Send loop carry
// it: while a Send is in flight, writes gather into the next one, so
// envelopes fill up without a timer and memory stays bounded by two
// chunks.
type stdinWriter struct {
	p    *process
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	eof  bool  // Close was called
	err  error // the Send loop stopped
	// endTaken: the chunk carrying end of stream has been taken.
	endTaken bool
	done     chan struct{}
}

func newStdinWriter(p *process) *stdinWriter {
	w := &stdinWriter{p: p, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *stdinWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	limit := w.p.t.sendChunk()
	n := 0
	for len(b) > 0 {
		for len(w.buf) >= limit && w.err == nil && !w.eof {
			w.cond.Wait()
		}
		if w.err != nil {
			return n, w.err
		}
		if w.eof {
			return n, io.ErrClosedPipe
		}
		k := min(len(b), limit-len(w.buf))
		w.buf = append(w.buf, b[:k]...)
		b, n = b[k:], n+k
		w.cond.Broadcast()
	}
	return n, nil
}

// Close sends end of stream after what is buffered, and waits for it to
// be sent.
func (w *stdinWriter) Close() error {
	w.mu.Lock()
	if !w.eof && w.err == nil {
		w.eof = true
		w.cond.Broadcast()
	}
	w.mu.Unlock()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if errors.Is(w.err, errStdinDone) {
		return nil
	}
	return w.err
}

var errStdinDone = errors.New("stdin closed")

func (w *stdinWriter) abort(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}

// input is a chunk of stdin taken from the buffer, with its Send once
// made ready.
type input struct {
	data []byte
	end  bool // the last chunk: its Send carries End="true"
	out  *outgoing
}

// take removes up to one Send's worth of input from the buffer. With wait
// it blocks until there is some, or end of stream; without, it returns
// nil at once when there is nothing to send. It also returns nil once the
// writer has stopped.
func (w *stdinWriter) take(wait bool) *input {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wait && len(w.buf) == 0 && !w.eof && w.err == nil {
		w.cond.Wait()
	}
	if w.err != nil || w.endTaken || (len(w.buf) == 0 && !w.eof) {
		return nil
	}
	k := min(len(w.buf), w.p.t.sendChunk())
	in := &input{data: append([]byte(nil), w.buf[:k]...)}
	w.buf = append(w.buf[:0], w.buf[k:]...)
	in.end = w.eof && len(w.buf) == 0
	w.endTaken = in.end
	w.cond.Broadcast()
	return in
}

// run sends what is written, one Send at a time (WinRS gives no order
// between concurrent Sends to one command). While a Send travels, the
// next one is built and, when messages are encrypted, sealed: with NTLM
// sealing that costs about as much as moving it, so doing it meanwhile
// keeps the link busy.
func (w *stdinWriter) run() {
	defer close(w.done)
	var next *input
	for {
		cur := next
		next = nil
		if cur == nil {
			if cur = w.take(true); cur == nil {
				return
			}
		}
		var ahead chan *input
		if !cur.end {
			if n := w.take(false); n != nil {
				ahead = make(chan *input, 1)
				go func() {
					// A failure here shows again when its turn comes.
					n.out, _ = w.ready(n.data, n.end)
					ahead <- n
				}()
			}
		}
		err := w.send(cur)
		if ahead != nil {
			next = <-ahead
		}
		if err != nil {
			if next != nil {
				w.p.t.discard(next.out)
			}
			w.abort(err)
			return
		}
		if cur.end {
			w.abort(errStdinDone)
			return
		}
	}
}

func (w *stdinWriter) ready(data []byte, end bool) (*outgoing, error) {
	t := w.p.t
	return t.ready(w.p.ctx, "sending input", mz.NewSendInputRequest(t.url, w.p.shellID, w.p.cmdID, data, end, t.params))
}

// send delivers one chunk, splitting it when the host says the envelope
// is too large: such a request is rejected whole, so sending it again in
// parts duplicates nothing.
func (w *stdinWriter) send(in *input) error {
	t := w.p.t
	chunk, o := in.data, in.out
	for len(chunk) > 0 || in.end {
		k := min(len(chunk), t.sendChunk())
		last := in.end && k == len(chunk)
		if o != nil && k != len(chunk) {
			// Made ready whole; the host has since shown it takes less.
			t.discard(o)
			o = nil
		}
		if o == nil {
			var err error
			if o, err = w.ready(chunk[:k], last); err != nil {
				return err
			}
		}
		_, err := t.send(w.p.ctx, o)
		o = nil
		var f *Fault
		if errors.As(err, &f) && f.envelopeTooLarge() && t.MaxEnvelopeSize() > 16*1024 {
			t.maxEnvelope.Store(int64(t.MaxEnvelopeSize() / 2))
			continue
		}
		if err != nil {
			return err
		}
		t.inputSent.Add(int64(k))
		chunk = chunk[k:]
		if last {
			return nil
		}
	}
	return nil
}
