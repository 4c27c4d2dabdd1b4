package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
)

// Record is one entry of a classic Windows event log, as ReadEventLog
// returns it in an EVENTLOGRECORD.
type Record struct {
	Number    uint32
	Generated time.Time
	EventID   uint32 // the low 16 bits are the event's code
	Type      uint16
	Source    string
	Computer  string
	Strings   []string
}

// Event types (winnt.h).
const (
	TypeError        = 0x0001
	TypeWarning      = 0x0002
	TypeInformation  = 0x0004
	TypeAuditSuccess = 0x0008
	TypeAuditFailure = 0x0010
)

// recordMagic is EVENTLOGRECORD.Reserved, "LfLe".
const recordMagic = 0x654c664c

// headerSize is EVENTLOGRECORD's fixed part, up to SourceName.
const headerSize = 56

var errBadRecord = errors.New("malformed event log record")

// parseRecords splits a ReadEventLog buffer into records. Every length
// and offset is checked against the buffer: a record that does not fit
// is an error, never a read outside it.
func parseRecords(buf []byte) ([]Record, error) {
	var out []Record
	for len(buf) > 0 {
		if len(buf) < headerSize {
			return out, fmt.Errorf("%w: %d bytes left, less than a header", errBadRecord, len(buf))
		}
		le := binary.LittleEndian
		length := le.Uint32(buf[0:])
		if le.Uint32(buf[4:]) != recordMagic || length < headerSize+4 || uint64(length) > uint64(len(buf)) || length%4 != 0 {
			return out, fmt.Errorf("%w: bad length %d or signature", errBadRecord, length)
		}
		rec := buf[:length]
		if le.Uint32(rec[length-4:]) != length {
			return out, fmt.Errorf("%w: trailing length does not match", errBadRecord)
		}
		r := Record{
			Number:    le.Uint32(rec[8:]),
			Generated: time.Unix(int64(le.Uint32(rec[12:])), 0).UTC(),
			EventID:   le.Uint32(rec[20:]),
			Type:      le.Uint16(rec[24:]),
		}
		numStrings := int(le.Uint16(rec[26:]))
		stringOffset := le.Uint32(rec[36:])
		body := rec[headerSize : length-4]
		var rest []byte
		var ok bool
		if r.Source, rest, ok = utf16z(body); !ok {
			return out, fmt.Errorf("%w: source name", errBadRecord)
		}
		if r.Computer, _, ok = utf16z(rest); !ok {
			return out, fmt.Errorf("%w: computer name", errBadRecord)
		}
		if numStrings > 0 {
			if stringOffset < headerSize || stringOffset >= length-4 {
				return out, fmt.Errorf("%w: string offset %d", errBadRecord, stringOffset)
			}
			s := rec[stringOffset : length-4]
			for range numStrings {
				var str string
				if str, s, ok = utf16z(s); !ok {
					return out, fmt.Errorf("%w: insertion string", errBadRecord)
				}
				r.Strings = append(r.Strings, str)
			}
		}
		out = append(out, r)
		buf = buf[length:]
	}
	return out, nil
}

// utf16z reads a NUL-terminated UTF-16LE string from the start of b.
func utf16z(b []byte) (string, []byte, bool) {
	var units []uint16
	for i := 0; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		if u == 0 {
			return string(utf16.Decode(units)), b[i+2:], true
		}
		units = append(units, u)
	}
	return "", nil, false
}

// Line is the record as gsd logs prints it: time, level, event code and
// the record's strings. Sources registered as gsd registers them (with
// EventCreate.exe's messages, "%1") and as kardianos/service does have
// their whole message in the first string.
func (r Record) Line() string {
	level := "info"
	switch r.Type {
	case TypeError:
		level = "error"
	case TypeWarning:
		level = "warning"
	case TypeAuditSuccess:
		level = "audit-success"
	case TypeAuditFailure:
		level = "audit-failure"
	}
	msg := ""
	for i, s := range r.Strings {
		if i > 0 {
			msg += " "
		}
		msg += s
	}
	return fmt.Sprintf("%s %s %d: %s", r.Generated.Format(time.RFC3339), level, r.EventID&0xffff, msg)
}
