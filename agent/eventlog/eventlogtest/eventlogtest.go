package eventlogtest

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/gsd-deploy/gsd/agent/eventlog"
)

// The fixed part of an EVENTLOGRECORD, up to SourceName, and its
// signature, "LfLe" (winnt.h).
const (
	headerSize  = 56
	recordMagic = 0x654c664c
)

// EncodeRecord lays a record out as an EVENTLOGRECORD: the fixed header,
// source and computer names, a SID of sidLen bytes, the insertion strings,
// padding to a DWORD and the length again.
func EncodeRecord(r eventlog.Record, sidLen int) []byte {
	w := func(s string) []byte {
		u := utf16.Encode([]rune(s))
		b := make([]byte, 2*len(u)+2)
		for i, c := range u {
			binary.LittleEndian.PutUint16(b[2*i:], c)
		}
		return b
	}
	body := append(w(r.Source), w(r.Computer)...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	sidOffset := headerSize + len(body)
	body = append(body, make([]byte, sidLen)...)
	stringOffset := headerSize + len(body)
	for _, s := range r.Strings {
		body = append(body, w(s)...)
	}
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	length := headerSize + len(body) + 4
	b := make([]byte, headerSize, length)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(length))
	le.PutUint32(b[4:], recordMagic)
	le.PutUint32(b[8:], r.Number)
	le.PutUint32(b[12:], uint32(r.Generated.Unix()))
	le.PutUint32(b[16:], uint32(r.Generated.Unix()))
	le.PutUint32(b[20:], r.EventID)
	le.PutUint16(b[24:], r.Type)
	le.PutUint16(b[26:], uint16(len(r.Strings)))
	le.PutUint32(b[36:], uint32(stringOffset))
	le.PutUint32(b[40:], uint32(sidLen))
	le.PutUint32(b[44:], uint32(sidOffset))
	le.PutUint32(b[52:], uint32(length-4))
	b = append(b, body...)
	return le.AppendUint32(b, uint32(length))
}

// Logs are event logs that answer as advapi32 documents: ReadEventLog
// with EVENTLOG_SEEK_READ returns whole records from the one asked for,
// ERROR_INSUFFICIENT_BUFFER with the size needed when the first does not
// fit, and ERROR_HANDLE_EOF past the end.
type Logs struct {
	mu    sync.Mutex
	logs  map[string][]eventlog.Record // oldest first, numbered
	next  map[string]uint32            // the next record's number
	reads int
}

// Reads counts the calls of ReadAt.
func (f *Logs) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// Write appends an entry of source to log, as ReportEvent does.
func (f *Logs) Write(log, source string, typ uint16, at time.Time, msg ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logs == nil {
		f.logs, f.next = map[string][]eventlog.Record{}, map[string]uint32{}
	}
	n := max(f.next[log], 1)
	f.next[log] = n + 1
	f.logs[log] = append(f.logs[log], eventlog.Record{Number: n, Generated: at.UTC().Truncate(time.Second), EventID: 0x40000001, Type: typ, Source: source, Computer: "WEB1", Strings: msg})
}

// Clear empties a log, as ClearEventLog does; numbering starts over.
func (f *Logs) Clear(log string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[log], f.next[log] = nil, 1
}

// Drop removes the oldest records, as a log that wraps does.
func (f *Logs) Drop(log string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[log] = f.logs[log][n:]
}

// Open opens a log.
func (f *Logs) Open(log string) (eventlog.LogReader, error) { return &reader{f: f, log: log}, nil }

type reader struct {
	f   *Logs
	log string
}

func (r *reader) Range() (uint32, uint32, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	recs := r.f.logs[r.log]
	if len(recs) == 0 {
		return 0, 0, nil
	}
	return recs[0].Number, uint32(len(recs)), nil
}

func (r *reader) ReadAt(at uint32, backwards bool, buf []byte) (int, int, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.reads++
	recs := r.f.logs[r.log]
	i := -1
	for j, rec := range recs {
		if rec.Number == at {
			i = j
		}
	}
	if i < 0 {
		return 0, 0, eventlog.ErrEndOfLog
	}
	n := 0
	for i >= 0 && i < len(recs) {
		b := EncodeRecord(recs[i], 12)
		if n+len(b) > len(buf) {
			if n == 0 {
				return 0, len(b), eventlog.ErrBufferTooSmall
			}
			break
		}
		n += copy(buf[n:], b)
		if backwards {
			i--
		} else {
			i++
		}
	}
	return n, 0, nil
}

func (r *reader) Close() error { return nil }

// Sources is the registry's EventLog key: the sources of each log.
type Sources struct {
	mu   sync.Mutex
	logs map[string][]string
}

// Lookup finds the log a source is in.
func (f *Sources) Lookup(source string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookup(source), nil
}

func (f *Sources) lookup(source string) string {
	for log, srcs := range f.logs {
		for _, s := range srcs {
			if strings.EqualFold(s, source) {
				return log
			}
		}
	}
	return ""
}

// Register adds a source to a log; a source is in one log at most.
func (f *Sources) Register(log, source string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.lookup(source); l != "" {
		return fmt.Errorf("source %s exists in %s", source, l)
	}
	if f.logs == nil {
		f.logs = map[string][]string{}
	}
	f.logs[log] = append(f.logs[log], source)
	return nil
}

// Remove takes a source out of a log.
func (f *Sources) Remove(log, source string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keep []string
	for _, s := range f.logs[log] {
		if !strings.EqualFold(s, source) {
			keep = append(keep, s)
		}
	}
	f.logs[log] = keep
	return nil
}
