package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Error is a request the agent answered with an error event.
type Error struct {
	Op     string
	Detail protocol.Error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Op, e.Detail.Message, e.Detail.Code)
}

// Code is the protocol error code, for branching.
func (e *Error) Code() string { return e.Detail.Code }

// Client talks to one agent. Calls are serialised: the protocol answers
// requests in order.
type Client struct {
	mu sync.Mutex
	// wmu guards w: a request line, or a stage's line and frames, is
	// written whole, and heartbeats go between them.
	wmu    sync.Mutex
	w      *bufio.Writer
	events *bufio.Scanner
	hello  protocol.Hello
	nextID int
	// Progress, if set, receives every progress event.
	Progress func(protocol.Event)
	// FrameSize is the payload bytes per frame when staging
	// (protocol.DefaultFrameSize if zero).
	FrameSize int
	// Encoding is how staged bytes travel: protocol.EncodingZstd (what New
	// sets) or protocol.EncodingNone.
	Encoding string
}

// New reads the agent's hello from r and returns a client that writes
// requests to w.
func New(r io.Reader, w io.Writer) (*Client, error) {
	// Small to start with: a fleet-wide plan holds one client per host
	// at once. The event buffer grows for a large answer (facts of many
	// services); the writer's size is the largest write a frame needs.
	c := &Client{w: bufio.NewWriterSize(w, 16<<10), events: bufio.NewScanner(r), Encoding: protocol.EncodingZstd}
	c.events.Buffer(make([]byte, 0, 4<<10), 256<<20)
	ev, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("reading agent hello: %w", err)
	}
	if ev.Kind != protocol.EventHello || ev.Hello == nil {
		return nil, fmt.Errorf("agent did not start with hello: %+v", ev)
	}
	if ev.Hello.ProtocolVersion < protocol.Version {
		return nil, fmt.Errorf("agent %s speaks protocol %d, this gsd needs %d", ev.Hello.AgentVersion, ev.Hello.ProtocolVersion, protocol.Version)
	}
	c.hello = *ev.Hello
	return c, nil
}

// Hello is what the agent announced.
func (c *Client) Hello() protocol.Hello { return c.hello }

func (c *Client) read() (protocol.Event, error) {
	if !c.events.Scan() {
		if err := c.events.Err(); err != nil {
			return protocol.Event{}, err
		}
		return protocol.Event{}, io.ErrUnexpectedEOF
	}
	var ev protocol.Event
	if err := json.Unmarshal(c.events.Bytes(), &ev); err != nil {
		return protocol.Event{}, fmt.Errorf("bad event line: %w", err)
	}
	return ev, nil
}

func (c *Client) id() string {
	c.nextID++
	return strconv.Itoa(c.nextID)
}

// Call sends one request and decodes its result into result (if non-nil).
func (c *Client) Call(op string, args, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := protocol.Request{ID: c.id(), Op: op}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		req.Args = b
	}
	if err := c.write(req); err != nil {
		return err
	}
	return c.await(req.ID, op, result)
}

func (c *Client) write(req protocol.Request) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := protocol.EncodeRequest(c.w, req); err != nil {
		return err
	}
	return c.w.Flush()
}

// Heartbeat says the client is still there, every interval until ctx
// ends or the input breaks, from the moment it is called: the agent then
// knows when its controller is gone (see protocol.HeartbeatArgs). An
// agent that does not announce the op is sent none. A heartbeat that
// would have to wait for a stage's frames is skipped: those bytes say the
// same.
func (c *Client) Heartbeat(ctx context.Context, interval time.Duration) {
	if !slices.Contains(c.hello.Ops, protocol.OpHeartbeat) || interval <= 0 {
		return
	}
	beat := protocol.Request{Op: protocol.OpHeartbeat, Args: protocol.MustArgs(protocol.HeartbeatArgs{IntervalMS: interval.Milliseconds()})}
	if c.write(beat) != nil {
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !c.wmu.TryLock() {
				continue
			}
			err := protocol.EncodeRequest(c.w, beat)
			if err == nil {
				err = c.w.Flush()
			}
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
}

func (c *Client) await(id, op string, result any) error {
	for {
		ev, err := c.read()
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if ev.ID != id {
			return fmt.Errorf("%s: event for request %q while waiting for %q", op, ev.ID, id)
		}
		switch ev.Kind {
		case protocol.EventProgress:
			if c.Progress != nil {
				c.Progress(ev)
			}
		case protocol.EventError:
			if ev.Error == nil {
				return &Error{Op: op, Detail: protocol.Error{Code: protocol.CodeFailed, Message: "error event without details"}}
			}
			return &Error{Op: op, Detail: *ev.Error}
		case protocol.EventResult:
			if result != nil && len(ev.Result) > 0 {
				return json.Unmarshal(ev.Result, result)
			}
			return nil
		default:
			return fmt.Errorf("%s: unexpected %q event", op, ev.Kind)
		}
	}
}

// Stage streams size bytes from r as an artifact named name whose SHA-256
// must be sha. If r fails or ends early, the frames are ended anyway so
// the agent refuses the stage and the session stays usable.
func (c *Client) Stage(sha string, size int64, name string, r io.Reader) (protocol.StageResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var res protocol.StageResult
	id := c.id()
	c.wmu.Lock()
	res, srcErr, err := c.sendStage(id, sha, size, name, r)
	c.wmu.Unlock()
	if err != nil {
		return res, err
	}
	err = c.await(id, protocol.OpStage, &res)
	if srcErr != nil {
		return res, srcErr
	}
	return res, err
}

// sendStage writes a stage request and its frames; srcErr is a failure
// of the source, err one of the session.
func (c *Client) sendStage(id, sha string, size int64, name string, r io.Reader) (res protocol.StageResult, srcErr, err error) {
	if err := protocol.EncodeRequest(c.w, protocol.Request{ID: id, Op: protocol.OpStage, Args: protocol.MustArgs(protocol.StageArgs{SHA256: sha, Size: size, Name: name, Encoding: c.Encoding})}); err != nil {
		return res, nil, err
	}
	frames := protocol.NewFrameWriter(c.w, c.FrameSize)
	var body io.WriteCloser = nopCloser{frames}
	if c.Encoding == protocol.EncodingZstd {
		zw, err := newCompressor(frames)
		if err != nil {
			return res, nil, err
		}
		body = zw
	}
	src := &sourceReader{r: io.LimitReader(r, size)}
	sent, err := io.Copy(body, src)
	switch {
	case err != nil && src.err == nil:
		return res, nil, err // writing to the agent failed: the session is broken
	case err != nil:
		srcErr = fmt.Errorf("stage %s: reading the artifact: %w", name, err)
	case sent < size:
		srcErr = fmt.Errorf("stage %s: source ended after %d of %d bytes", name, sent, size)
	default:
		// Only a complete stream is finished; a cut one makes the agent
		// refuse the stage.
		if err := body.Close(); err != nil {
			return res, nil, err
		}
	}
	if err := frames.Close(); err != nil {
		return res, nil, err
	}
	return res, srcErr, c.w.Flush()
}

// StageBytes stages an in-memory artifact.
func (c *Client) StageBytes(name string, content []byte) (protocol.StageResult, error) {
	sum := sha256.Sum256(content)
	return c.Stage(hex.EncodeToString(sum[:]), int64(len(content)), name, bytes.NewReader(content))
}
