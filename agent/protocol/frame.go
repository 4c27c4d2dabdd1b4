package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A stage's bytes follow its request line as binary frames: a 4-byte
// big-endian length, then that many bytes of the (possibly compressed)
// stream. A zero length ends the stream. Frames keep the bytes out of
// JSON and base64: the transports already carry binary stdin (WinRS
// base64-encodes it once inside its own envelopes), and a second encoding
// cost a quarter of the link and most of the agent's CPU. Because every
// frame says how long it is, an agent that refuses a stage can still
// skip to the end of it and stay in step.

// MaxFrame bounds one frame's payload. A longer announced length means the
// stream is not what the agent thinks it is.
const MaxFrame = 1 << 20

// DefaultFrameSize is the payload a client puts in each frame.
const DefaultFrameSize = 256 << 10

// Encodings of a stage stream.
const (
	// EncodingNone: the frames carry the artifact's bytes as they are.
	EncodingNone = ""
	// EncodingZstd: the frames carry one zstd stream of the artifact.
	EncodingZstd = "zstd"
)

// ErrFrameTooLarge is a frame header over MaxFrame.
var ErrFrameTooLarge = errors.New("frame longer than the protocol allows")

// FrameReader reads the payload of a stage's frames as one stream. Read
// returns io.EOF after the terminating empty frame, io.ErrUnexpectedEOF if
// the input ends inside the frames, and ErrFrameTooLarge (wrapped) for a
// header over MaxFrame, after which the stream cannot be followed.
type FrameReader struct {
	r    io.Reader
	left int // payload bytes of the current frame not yet read
	done bool
	err  error
}

// Frames returns a reader over the frames that follow the line just
// decoded. The decoder must not be used for lines until the frames have
// been read to their end (Read returned io.EOF, or Drain returned nil).
func (d *Decoder) Frames() *FrameReader { return &FrameReader{r: d.r} }

func (f *FrameReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	for f.left == 0 {
		if f.done {
			return 0, io.EOF
		}
		var head [4]byte
		if _, err := io.ReadFull(f.r, head[:]); err != nil {
			return 0, f.fail(err)
		}
		n := binary.BigEndian.Uint32(head[:])
		if n == 0 {
			f.done = true
			return 0, io.EOF
		}
		if n > MaxFrame {
			f.err = fmt.Errorf("%w: %d bytes announced, at most %d", ErrFrameTooLarge, n, MaxFrame)
			return 0, f.err
		}
		f.left = int(n)
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	if err != nil && f.left > 0 {
		return n, f.fail(err)
	}
	return n, nil
}

func (f *FrameReader) fail(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	f.err = err
	return err
}

// Drain reads and drops what is left of the frames, so the next line can
// be decoded. It returns nil once the terminating frame was read.
func (f *FrameReader) Drain() error {
	_, err := io.Copy(io.Discard, f)
	return err
}

// Ended reports whether the terminating frame has been read.
func (f *FrameReader) Ended() bool { return f.done && f.left == 0 }

// FrameWriter cuts what is written to it into frames of a fixed payload
// size. Close writes the last partial frame and the terminator; it does
// not close the underlying writer.
type FrameWriter struct {
	w   io.Writer
	buf []byte
}

// NewFrameWriter frames into w with payloads of size bytes
// (DefaultFrameSize if size <= 0 or over MaxFrame).
func NewFrameWriter(w io.Writer, size int) *FrameWriter {
	if size <= 0 || size > MaxFrame {
		size = DefaultFrameSize
	}
	return &FrameWriter{w: w, buf: make([]byte, 4, 4+size)}
}

func (f *FrameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), cap(f.buf)-len(f.buf))
		f.buf = append(f.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(f.buf) == cap(f.buf) {
			if err := f.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (f *FrameWriter) flush() error {
	if len(f.buf) == 4 {
		return nil
	}
	binary.BigEndian.PutUint32(f.buf[:4], uint32(len(f.buf)-4))
	_, err := f.w.Write(f.buf)
	f.buf = f.buf[:4]
	return err
}

// Close writes any buffered payload and the terminating empty frame.
func (f *FrameWriter) Close() error {
	if err := f.flush(); err != nil {
		return err
	}
	_, err := f.w.Write([]byte{0, 0, 0, 0})
	return err
}
