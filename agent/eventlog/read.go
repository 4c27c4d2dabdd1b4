package eventlog

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gsd-deploy/gsd/agent"
	"github.com/gsd-deploy/gsd/agent/protocol"
)

// Logs are the host's classic event logs, read as ReadEventLog does.
type Logs interface {
	// Open opens a log for reading. Windows opens the Application log
	// for a name it does not know, so only logs a source is registered in
	// are opened.
	Open(log string) (LogReader, error)
}

// LogReader reads one event log.
type LogReader interface {
	// Range is the number of the oldest record and how many there are
	// (GetOldestEventLogRecord, GetNumberOfEventLogRecords).
	Range() (oldest, count uint32, err error)
	// ReadAt fills buf with as many whole records as fit, starting at
	// record number at and going forwards or backwards (ReadEventLog
	// with EVENTLOG_SEEK_READ). When not even the first fits it returns
	// ErrBufferTooSmall (ERROR_INSUFFICIENT_BUFFER) and the size needed;
	// past the end of the log, ErrEndOfLog (ERROR_HANDLE_EOF).
	ReadAt(at uint32, backwards bool, buf []byte) (n, needed int, err error)
	Close() error
}

// The errors of LogReader.ReadAt that are part of reading a log.
var (
	ErrBufferTooSmall = errors.New("the buffer is too small for the next record")
	ErrEndOfLog       = errors.New("end of the event log")
)

// Bounds of one answer: the lines asked for (at most maxLines), the
// records looked at to find them in a busy log, and the bytes sent.
const (
	defaultLines = 100
	maxLines     = 10000
	maxScanned   = 200000
	maxAnswer    = 4 << 20
	firstBuffer  = 64 << 10
)

// ServiceLogs reads a native service's entries: those its source wrote
// to the Application log, and to the log it is registered in when that
// is its own. Without a cursor, the last lines; with one, what was
// written after it. It implements agent.ServiceLogReader.
func (h *Handler) ServiceLogs(service string, args protocol.LogsArgs) (protocol.LogsResult, error) {
	logs := []string{"Application"}
	if own, err := h.Sources.Lookup(service); err != nil && !errors.Is(err, ErrUnavailable) {
		return protocol.LogsResult{}, err
	} else if own != "" && !strings.EqualFold(own, "Application") {
		logs = append(logs, own)
	}
	var after map[string]uint32
	if args.After != nil {
		var err error
		if after, err = parseCursor(*args.After); err != nil {
			return protocol.LogsResult{}, err
		}
	}
	n := args.Lines
	switch {
	case args.Stream != "":
		return protocol.LogsResult{}, agent.Errorf(protocol.CodeBadRequest, "logs: service %s runs in native mode; its entries come from the event log, which has no streams", service)
	case n <= 0:
		n = defaultLines
	case n > maxLines:
		n = maxLines
	}
	cursor := map[string]uint32{}
	var all [][]Record
	for _, log := range logs {
		recs, newest, err := h.readLog(log, service, n, after)
		if errors.Is(err, ErrUnavailable) {
			continue
		}
		if err != nil {
			return protocol.LogsResult{}, fmt.Errorf("event log %s: %w", log, err)
		}
		cursor[log] = newest
		all = append(all, recs)
	}
	merged := mergeByTime(all)
	if args.After == nil && len(merged) > n {
		merged = merged[len(merged)-n:]
	}
	res := protocol.LogsResult{Lines: []string{}, Cursor: protocol.LogCursor{File: protocol.EventLogCursor, FileID: formatCursor(cursor)}}
	size := 0
	for _, r := range merged {
		line := strings.TrimRight(r.Line(), "\r\n")
		if size += len(line) + 1; size > maxAnswer {
			break
		}
		res.Lines = append(res.Lines, line)
	}
	return res, nil
}

// readLog reads one log: its last n records of source (all records when
// the log is the source's own), or with after those following the
// cursor's record. It returns them oldest first, and the newest record
// number read.
func (h *Handler) readLog(log, source string, n int, after map[string]uint32) ([]Record, uint32, error) {
	lr, err := h.Logs.Open(log)
	if err != nil {
		return nil, 0, err
	}
	defer lr.Close()
	oldest, count, err := lr.Range()
	if err != nil {
		return nil, 0, err
	}
	if count == 0 {
		return nil, 0, nil
	}
	newest := oldest + count - 1
	mine := func(r Record) bool { return strings.EqualFold(r.Source, source) }
	if after == nil {
		recs, _, err := scan(lr, newest, oldest, newest, true, mine, n)
		slices.Reverse(recs)
		return recs, newest, err
	}
	from, seen := after[log]
	switch {
	case !seen:
		return nil, newest, nil // a log new to the cursor is followed from now
	case from == newest:
		return nil, from, nil
	case from > newest || from+1 < oldest:
		from = oldest - 1 // the log was cleared, or wrapped past the cursor
	}
	recs, last, err := scan(lr, from+1, oldest, newest, false, mine, maxLines)
	if last == 0 {
		last = from
	}
	return recs, last, err
}

// scan reads records from number at, backwards or forwards, within
// [oldest, newest], and keeps those that match, up to n of them and
// maxScanned looked at. last is the number of the last record looked at
// (0 for none): where a follower goes on.
func scan(lr LogReader, at, oldest, newest uint32, backwards bool, match func(Record) bool, n int) (out []Record, last uint32, err error) {
	buf := make([]byte, firstBuffer)
	for scanned := 0; len(out) < n && scanned < maxScanned && at >= oldest && at <= newest; {
		got, needed, err := lr.ReadAt(at, backwards, buf)
		switch {
		case errors.Is(err, ErrBufferTooSmall) && needed > len(buf) && needed <= maxAnswer:
			buf = make([]byte, needed)
			continue
		case errors.Is(err, ErrEndOfLog):
			return out, last, nil
		case err != nil:
			return out, last, err
		}
		recs, err := parseRecords(buf[:got])
		if err != nil {
			return out, last, err
		}
		if len(recs) == 0 {
			return out, last, nil
		}
		before := last
		for _, r := range recs {
			if r.Number < oldest || r.Number > newest || len(out) == n {
				return out, last, nil
			}
			scanned++
			last = r.Number
			if match(r) {
				out = append(out, r)
			}
		}
		if last == before {
			return out, last, nil // no progress: never read the same records again
		}
		if backwards {
			if last <= oldest {
				break
			}
			at = last - 1
		} else {
			at = last + 1
		}
	}
	return out, last, nil
}

// mergeByTime interleaves records of several logs, oldest first.
func mergeByTime(logs [][]Record) []Record {
	var out []Record
	for _, l := range logs {
		out = append(out, l...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Generated.Before(out[j].Generated) })
	return out
}

// formatCursor writes the last record read of each log:
// "Application=123;Api=45".
func formatCursor(last map[string]uint32) string {
	logs := make([]string, 0, len(last))
	for l := range last {
		logs = append(logs, l)
	}
	sort.Strings(logs)
	parts := make([]string, len(logs))
	for i, l := range logs {
		parts[i] = l + "=" + strconv.FormatUint(uint64(last[l]), 10)
	}
	return strings.Join(parts, ";")
}

// parseCursor reads a cursor formatCursor wrote, refusing anything else.
func parseCursor(c protocol.LogCursor) (map[string]uint32, error) {
	bad := func() (map[string]uint32, error) {
		return nil, agent.Errorf(protocol.CodeBadRequest, "logs: %q is not a cursor of a native service's event log", c.File+" "+c.FileID)
	}
	if c.File != protocol.EventLogCursor || c.Offset != 0 || len(c.FileID) > 1024 {
		return bad()
	}
	out := map[string]uint32{}
	if c.FileID == "" {
		return out, nil
	}
	for _, part := range strings.Split(c.FileID, ";") {
		log, num, ok := strings.Cut(part, "=")
		n, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || !logNameRE.MatchString(log) {
			return bad()
		}
		out[log] = uint32(n)
	}
	return out, nil
}
