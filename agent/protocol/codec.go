package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultMaxLine bounds one request line. It leaves room for a managed
// file's content in write_file args (base64 in JSON), and keeps a hostile
// client from making the agent buffer without limit.
const DefaultMaxLine = 4 << 20

// MaxIDLength bounds request ids, which are echoed in every event.
const MaxIDLength = 128

// ErrLineTooLong is returned, wrapped in a *DecodeError, for a line over the
// limit; the rest of that line is discarded so the stream stays usable.
var ErrLineTooLong = errors.New("line too long")

// DecodeError is a line that could not be turned into a Request. The stream
// is still positioned at the next line, so the agent can report and go on.
type DecodeError struct {
	Code string
	Err  error
	// ID is the request id when it could be recovered, so the error event
	// can still be correlated.
	ID string
}

func (e *DecodeError) Error() string { return e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// Decoder reads requests, one JSON object per line.
type Decoder struct {
	r       *bufio.Reader
	maxLine int
	buf     []byte
}

// NewDecoder reads lines of at most maxLine bytes (DefaultMaxLine if <= 0).
func NewDecoder(r io.Reader, maxLine int) *Decoder {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine}
}

// MaxLine is the longest line this decoder accepts.
func (d *Decoder) MaxLine() int { return d.maxLine }

// Decode returns the next request. It returns io.EOF at a clean end of
// input, a *DecodeError for a bad line (after which decoding may continue),
// and any other error for a broken stream.
func (d *Decoder) Decode() (Request, error) {
	for {
		line, err := d.readLine()
		if err != nil {
			return Request{}, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue // blank lines are tolerated, as after a CRLF transport
		}
		return ParseRequest(line)
	}
}

func (d *Decoder) readLine() ([]byte, error) {
	d.buf = d.buf[:0]
	tooLong := false
	for {
		frag, err := d.r.ReadSlice('\n')
		if !tooLong {
			if len(d.buf)+len(frag) > d.maxLine+1 { // +1: the newline itself
				tooLong = true
				d.buf = d.buf[:0]
			} else {
				d.buf = append(d.buf, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, &DecodeError{Code: CodeLineTooLong, Err: fmt.Errorf("%w: over %d bytes", ErrLineTooLong, d.maxLine)}
			}
			return d.buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if tooLong {
				return nil, &DecodeError{Code: CodeLineTooLong, Err: fmt.Errorf("%w: over %d bytes", ErrLineTooLong, d.maxLine)}
			}
			if len(d.buf) == 0 {
				return nil, io.EOF
			}
			return d.buf, nil // last line without a newline
		default:
			return nil, err
		}
	}
}

// ParseRequest decodes and checks one line. Unknown fields are refused so
// that a typo in a client never silently drops a setting.
func ParseRequest(line []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, &DecodeError{Code: CodeBadRequest, Err: fmt.Errorf("malformed request: %v", err), ID: salvageID(line)}
	}
	if dec.More() {
		return Request{}, &DecodeError{Code: CodeBadRequest, Err: errors.New("malformed request: more than one JSON value on a line"), ID: req.ID}
	}
	// A heartbeat is the one request without an id: it gets no answer.
	if req.ID != "" || req.Op != OpHeartbeat {
		if err := checkID(req.ID); err != nil {
			return Request{}, &DecodeError{Code: CodeBadRequest, Err: err}
		}
	}
	if req.Op == "" {
		return Request{}, &DecodeError{Code: CodeBadRequest, Err: errors.New("malformed request: op is empty"), ID: req.ID}
	}
	return req, nil
}

func checkID(id string) error {
	if id == "" {
		return errors.New("malformed request: id is empty")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("malformed request: id longer than %d bytes", MaxIDLength)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errors.New("malformed request: id contains control characters")
		}
	}
	return nil
}

// salvageID finds the id of a request whose other fields are broken, so the
// error event can still name it.
func salvageID(line []byte) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(line, &probe) != nil || checkID(probe.ID) != nil {
		return ""
	}
	return probe.ID
}

// DecodeArgs decodes a request's args strictly into v.
func DecodeArgs(req Request, v any) error {
	if len(req.Args) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(req.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: bad args: %v", req.Op, err)
	}
	return nil
}

// Encoder writes events as JSON lines. It is safe for concurrent use, since
// progress may be reported from more than one goroutine.
type Encoder struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEncoder writes to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes one event as one line.
func (e *Encoder) Encode(ev Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(line)
	return err
}

// EncodeRequest writes one request line; used by clients and tests.
func EncodeRequest(w io.Writer, req Request) error {
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

// MustArgs marshals op args for a request; it panics only on types that
// cannot be marshalled, which is a programming error.
func MustArgs(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
