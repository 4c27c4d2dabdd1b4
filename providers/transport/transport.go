package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Transport starts commands on one host. A transport only has to start a
// process with streams; running a command to completion, uploading a file
// and talking to the agent are built on that here, once.
type Transport interface {
	// Start runs a Windows command line through cmd.exe (as WinRS and
	// Windows OpenSSH do). The process ends when ctx is done or Close is
	// called.
	Start(ctx context.Context, commandLine string) (Process, error)
	// Close ends every process and connection.
	Close() error
}

// Process is a command running on a host.
type Process interface {
	// Stdin is the command's standard input; Close it to send end of
	// stream.
	Stdin() io.WriteCloser
	// Stdout must be read: output the caller does not read holds the
	// command back, as a full pipe does.
	Stdout() io.Reader
	// Wait returns the exit code once the command has ended and Stdout
	// has been read to its end, or the transport error that stopped it.
	Wait() (int, error)
	// Stderr is the last StderrLimit bytes of the command's standard
	// error, complete once Wait has returned.
	Stderr() []byte
	// Close ends the command if it still runs and frees what it held.
	Close() error
}

// StderrLimit bounds the standard error a Process keeps: enough for any
// error message, never a memory risk.
const StderrLimit = 64 << 10

// TailBuffer keeps the last Limit bytes written to it. Transports use it
// for standard error.
type TailBuffer struct {
	Limit int
	mu    sync.Mutex
	buf   []byte
}

func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.Limit
	if limit <= 0 {
		limit = StderrLimit
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what is kept.
func (b *TailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

// Result is a finished command.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// Run runs commandLine with stdin (nil for none) to completion, keeping
// at most maxStdout bytes of its output.
func Run(ctx context.Context, t Transport, commandLine string, stdin io.Reader, maxStdout int) (Result, error) {
	p, err := t.Start(ctx, commandLine)
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	sendErr := make(chan error, 1)
	go func() {
		var err error
		if stdin != nil {
			_, err = io.Copy(p.Stdin(), stdin)
		}
		if cerr := p.Stdin().Close(); err == nil {
			err = cerr
		}
		sendErr <- err
	}()
	out := &TailBuffer{Limit: maxStdout}
	_, readErr := io.Copy(out, p.Stdout())
	code, err := p.Wait()
	res := Result{ExitCode: code, Stdout: out.Bytes(), Stderr: p.Stderr()}
	if err != nil {
		return res, err
	}
	if readErr != nil {
		return res, readErr
	}
	// A command may exit without reading all of its input; its exit code
	// says more than the broken pipe, so input errors only count when it
	// succeeded, and input closed by a command that ended counts not at
	// all (the bootstrap, which must read everything, checks the hash).
	if err := <-sendErr; err != nil && code == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
		return res, fmt.Errorf("sending input: %w", err)
	}
	return res, nil
}

// Description is how a transport reaches its host, as gsd hosts check
// reports it: where it connects, how it authenticates, what protects the
// messages, and what it learned of the host on the way.
type Description struct {
	// Listener is the endpoint, e.g. http://10.0.0.5:5985/wsman.
	Listener string
	// Auth names the scheme and account.
	Auth string
	// Encryption says what protects commands and files on the wire.
	Encryption string
	// TLS is the host certificate's identity and how it was checked, or
	// why TLS is not used.
	TLS string
	// Notes are things the host does that a user may want to change,
	// each naming the fix.
	Notes []string
}

// Describer is a Transport that can describe itself.
type Describer interface {
	Describe() Description
}
