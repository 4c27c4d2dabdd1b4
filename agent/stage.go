package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// serveStage handles a stage request and the chunk lines that follow it.
// Chunks are hashed and written as they arrive, so memory stays at one line
// whatever the artifact's size. If the request is refused, its chunks are
// still read and dropped so the stream stays in step. A line that is not a
// chunk of this stage ends it as broken and is returned to be served next.
func (a *Agent) serveStage(ctx context.Context, req protocol.Request, dec *protocol.Decoder, enc *protocol.Encoder) (*protocol.Request, error) {
	emit := func(message string, _ any) {
		enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventProgress, Op: req.Op, Message: message})
	}
	fail := func(err error) error {
		return enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventError, Op: req.Op, Error: toProtocolError(err)})
	}
	var args protocol.StageArgs
	var failure error
	var up *artifacts.Upload
	// Every stage request ends with exactly one error or result, so the
	// chunks of a refused one must be consumed silently; that needs the
	// announced size.
	if err := protocol.DecodeArgs(req, &args); err != nil {
		size, ok := announcedSize(req.Args)
		if !ok {
			// How many chunk lines follow is unknown, so the stream can
			// no longer be followed: answer once and end the session.
			if werr := fail(failf(protocol.CodeBadRequest, "%v; the size of the stream that follows is unknown, so this session ends", err)); werr != nil {
				return nil, werr
			}
			return nil, fmt.Errorf("%w: stage %q had unreadable args and no usable size", ErrSessionEnded, req.ID)
		}
		args = protocol.StageArgs{Size: size}
		failure = failf(protocol.CodeBadRequest, "%v", err)
	}
	switch {
	case failure != nil:
	case args.Size < 0:
		if werr := fail(failf(protocol.CodeBadRequest, "stage: negative size %d; the stream that follows cannot be followed, so this session ends", args.Size)); werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("%w: stage %q announced a negative size", ErrSessionEnded, req.ID)
	case len(req.Data) > 0:
		failure = failf(protocol.CodeBadRequest, "stage: data belongs in chunk lines")
	default:
		up, failure = a.beginUpload(ctx, args, emit)
	}
	abort := func() {
		if up != nil {
			up.Abort()
		}
	}
	received := int64(0)
	for received < args.Size {
		next, err := dec.Decode()
		if errors.Is(err, io.EOF) {
			abort()
			if failure == nil {
				failure = failf(protocol.CodeStreamBroken, "stage: input ended after %d of %d bytes; nothing was stored", received, args.Size)
			}
			return nil, fail(failure)
		}
		var de *protocol.DecodeError
		if errors.As(err, &de) {
			abort()
			return nil, fail(failf(protocol.CodeStreamBroken, "stage: bad chunk line after %d of %d bytes (%v); nothing was stored", received, args.Size, de))
		}
		if err != nil {
			abort()
			return nil, err
		}
		if next.ID != req.ID || next.Op != protocol.OpChunk {
			abort()
			if failure == nil {
				failure = failf(protocol.CodeStreamBroken, "stage: interrupted by %q request after %d of %d bytes; nothing was stored", next.Op, received, args.Size)
			}
			return &next, fail(failure)
		}
		if len(next.Args) > 0 {
			abort()
			return nil, fail(failf(protocol.CodeBadRequest, "stage: chunk lines carry data only"))
		}
		received += int64(len(next.Data))
		if received > args.Size {
			abort()
			return nil, fail(fmt.Errorf("%w: stream is longer than the announced %d bytes; nothing was stored", artifacts.ErrSizeMismatch, args.Size))
		}
		if failure == nil {
			if _, err := up.Write(next.Data); err != nil {
				abort()
				failure = err
			}
		}
		if ctx.Err() != nil {
			abort()
			return nil, ctx.Err()
		}
	}
	if failure != nil {
		abort()
		return nil, fail(failure)
	}
	path, err := up.Commit()
	if err != nil {
		return nil, fail(err)
	}
	res := protocol.StageResult{Path: path, SHA256: args.SHA256, Size: args.Size, AlreadyPresent: up.AlreadyPresent()}
	return nil, enc.Encode(protocol.Event{ID: req.ID, Kind: protocol.EventResult, Op: req.Op, Result: protocol.MustArgs(res)})
}

// ErrSessionEnded is returned by Serve when a request leaves the stream in
// a state that cannot be followed (a stage whose size is unknown); the
// client was sent an error event saying so first.
var ErrSessionEnded = errors.New("session ended")

// announcedSize digs the size out of stage args that did not decode (an
// unknown field, a bad hash type), so their chunks can still be skipped.
func announcedSize(raw json.RawMessage) (int64, bool) {
	var loose struct {
		Size *int64 `json:"size"`
	}
	if json.Unmarshal(raw, &loose) != nil || loose.Size == nil || *loose.Size < 0 {
		return 0, false
	}
	return *loose.Size, true
}

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
