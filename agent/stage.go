package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// maxZstdWindow bounds the memory a stage's decompressor may be asked to
// use; gsd compresses with a far smaller window.
const maxZstdWindow = 8 << 20

// serveStage handles a stage request and the frames that follow it. The
// stream is hashed and written as it arrives, so memory stays at one frame
// (and the decompressor's window) whatever the artifact's size. Every
// stage ends with exactly one error or result, and its frames are always
// read to their end, refused or not, so the session stays in step.
func (a *Agent) serveStage(ctx context.Context, req protocol.Request, dec *protocol.Decoder, enc *protocol.Encoder) error {
	emit := func(message string, _ any) {
		enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventProgress, Op: req.Op, Message: message})
	}
	fail := func(err error) error {
		return enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventError, Op: req.Op, Error: toProtocolError(err)})
	}
	frames := dec.Frames()
	var args protocol.StageArgs
	var up *artifacts.Upload
	failure := protocol.DecodeArgs(req, &args)
	if failure != nil {
		failure = failf(protocol.CodeBadRequest, "%v", failure)
	}
	switch {
	case failure != nil:
	case args.Size < 0:
		failure = failf(protocol.CodeBadRequest, "stage: negative size %d", args.Size)
	case args.Encoding != protocol.EncodingNone && args.Encoding != protocol.EncodingZstd:
		failure = failf(protocol.CodeBadRequest, "stage: unknown encoding %q (this agent reads %q or none)", args.Encoding, protocol.EncodingZstd)
	default:
		up, failure = a.beginUpload(ctx, args, emit)
	}
	abort := func() {
		if up != nil {
			up.Abort()
		}
	}
	if failure == nil {
		failure = receive(ctx, up, frames, args)
	}
	// Skip what is left, so the next request line is where the decoder
	// looks; an error here means the stream itself broke.
	if err := frames.Drain(); err != nil {
		abort()
		switch {
		case errors.Is(err, protocol.ErrFrameTooLarge):
			if werr := fail(failf(protocol.CodeStreamBroken, "stage: %v; the stream cannot be followed, so this session ends", err)); werr != nil {
				return werr
			}
			return fmt.Errorf("%w: stage %q: %v", ErrSessionEnded, req.ID, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			if failure == nil || toProtocolError(failure).Code != protocol.CodeStreamBroken {
				failure = failf(protocol.CodeStreamBroken, "stage: input ended inside the stream; nothing was stored")
			}
			return fail(failure)
		default:
			return err
		}
	}
	if failure != nil {
		abort()
		return fail(failure)
	}
	path, err := up.Commit()
	if err != nil {
		return fail(err)
	}
	res := protocol.StageResult{Path: path, SHA256: args.SHA256, Size: args.Size, AlreadyPresent: up.AlreadyPresent()}
	return enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventResult, Op: req.Op, Result: protocol.MustArgs(res)})
}

// receive copies the decoded stream into the upload and checks it is
// exactly the announced size. It does not commit.
func receive(ctx context.Context, up *artifacts.Upload, frames *protocol.FrameReader, args protocol.StageArgs) error {
	var src io.Reader = frames
	if args.Encoding == protocol.EncodingZstd {
		zr, err := zstd.NewReader(frames, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return err
		}
		defer zr.Close()
		src = zr
	}
	w := &stageWriter{ctx: ctx, up: up}
	// One byte past the announced size is enough to tell a longer stream.
	_, err := io.Copy(w, io.LimitReader(src, args.Size+1))
	switch {
	case err == nil && w.n > args.Size:
		return fmt.Errorf("%w: stream is longer than the announced %d bytes; nothing was stored", artifacts.ErrSizeMismatch, args.Size)
	case err == nil && w.n < args.Size:
		return failf(protocol.CodeStreamBroken, "stage: stream ended after %d of %d bytes; nothing was stored", w.n, args.Size)
	case err == nil:
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		return failf(protocol.CodeStreamBroken, "stage: input ended after %d of %d bytes; nothing was stored", w.n, args.Size)
	case errors.Is(err, protocol.ErrFrameTooLarge), w.failed, ctx.Err() != nil:
		return err
	default:
		// The decompressor refused the bytes.
		return failf(protocol.CodeStreamBroken, "stage: the %s stream is corrupt after %d of %d bytes (%v); nothing was stored", args.Encoding, w.n, args.Size, err)
	}
}

// stageWriter counts what reaches the upload and stops when the session
// is cancelled.
type stageWriter struct {
	ctx    context.Context
	up     *artifacts.Upload
	n      int64
	failed bool // the upload or the context refused a write
}

func (w *stageWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		w.failed = true
		return 0, err
	}
	n, err := w.up.Write(p)
	w.n += int64(n)
	if err != nil {
		w.failed = true
	}
	return n, err
}

// ErrSessionEnded is returned by Serve when a request leaves the stream in
// a state that cannot be followed (a frame header over the limit); the
// client was sent an error event saying so first.
var ErrSessionEnded = errors.New("session ended")

func (a *Agent) beginUpload(ctx context.Context, args protocol.StageArgs, emit progressFunc) (*artifacts.Upload, error) {
	if err := protocol.ValidateSHA256(args.SHA256); err != nil {
		return nil, err
	}
	if err := protocol.ValidateFileName(args.Name); err != nil {
		return nil, err
	}
	if err := a.ensureLocked(ctx, "", emit); err != nil {
		return nil, err
	}
	return a.store.Begin(args.SHA256, args.Size, args.Name)
}
