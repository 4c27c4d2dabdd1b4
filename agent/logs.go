package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/servicehost"
	"github.com/gsd-deploy/gsd/agent/state"
)

// Bounds of a logs answer. An answer is one JSON line; 4 MiB of text keeps
// it in the same range as a request line, and a follower asks again for
// the rest.
const (
	defaultLogLines = 100
	maxLogLines     = 10000
	maxLogAnswer    = 4 << 20
	// tailChunk is the first read when a file is read backwards from its
	// end; later reads double, so a long tail costs few reads.
	tailChunk = 64 << 10
)

// logStreamFiles maps a stream to the current file the service host writes
// it to (see servicehost.Supervisor and the service-host command).
var logStreamFiles = map[string]string{
	protocol.StreamStdout:  "stdout.log",
	protocol.StreamStderr:  "stderr.log",
	protocol.StreamWrapper: "wrapper.log",
}

// ServiceLogReader is a kind's handler that reads a native service's
// log, which the service writes itself (the event log source's handler
// reads the Windows event log).
type ServiceLogReader interface {
	ServiceLogs(service string, args protocol.LogsArgs) (protocol.LogsResult, error)
}

// opLogs reads a service's log: a wrapped service's log files, or a
// native service's entries through a ServiceLogReader. It is read-only
// and does not take the host lock, so an operator can watch a service
// while an apply runs. Every path comes from the agent's layout; the
// client's cursor only picks one of the names the service host writes.
func (a *Agent) opLogs(_ context.Context, req protocol.Request, _ progressFunc) (any, error) {
	var args protocol.LogsArgs
	if err := protocol.DecodeArgs(req, &args); err != nil {
		return nil, badArgs(err)
	}
	if err := protocol.ValidateServiceName(args.Service); err != nil {
		return nil, err
	}
	if args.Lines < 0 {
		return nil, failf(protocol.CodeBadRequest, "logs: lines must not be negative")
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	svc, err := a.managedService(st, args.Service)
	if err != nil {
		return nil, err
	}
	if svc.Spec.Mode != protocol.ModeWrapped {
		for _, kind := range slices.Sorted(maps.Keys(a.handlers)) {
			if r, ok := a.handlers[kind].(ServiceLogReader); ok {
				return r.ServiceLogs(args.Service, args)
			}
		}
		return nil, failf(protocol.CodeUnsupported, "service %s runs in native mode: native services log to the Windows event log (or wherever they write themselves), which this agent cannot read", args.Service)
	}
	return a.wrappedLogs(svc, args)
}

// wrappedLogs reads a wrapped service's log files.
func (a *Agent) wrappedLogs(svc *state.Service, args protocol.LogsArgs) (any, error) {
	lines := args.Lines
	switch {
	case lines == 0:
		lines = defaultLogLines
	case lines > maxLogLines:
		lines = maxLogLines
	}
	var base string
	if args.Stream != "" {
		b, ok := logStreamFiles[args.Stream]
		if !ok {
			return nil, failf(protocol.CodeBadRequest, "logs: stream %q must be stdout, stderr or wrapper", args.Stream)
		}
		base = b
	}
	index := 0
	if c := args.After; c != nil {
		b, i, err := parseLogName(c.File)
		if err != nil {
			return nil, err
		}
		if base != "" && b != base {
			return nil, failf(protocol.CodeBadRequest, "logs: the cursor's file %s is not part of stream %s", c.File, args.Stream)
		}
		if c.Offset < 0 {
			return nil, failf(protocol.CodeBadRequest, "logs: negative cursor offset")
		}
		base, index = b, i
	}
	dir := a.logDir(svc, args.Service)
	if base == "" {
		base = newestOutput(dir)
		if base == "" {
			base = logStreamFiles[protocol.StreamStdout]
		}
	}
	lf := logFamily{dir: dir, base: base, keep: logKeep(svc.Spec)}
	if args.After == nil {
		return lf.tail(lines, maxLogAnswer)
	}
	return lf.follow(*args.After, index)
}

// logKeep is how many rotated files the service host keeps per stream.
func logKeep(spec protocol.ServiceSpec) int {
	if spec.Wrapper != nil && spec.Wrapper.LogKeep > 0 {
		return spec.Wrapper.LogKeep
	}
	return servicehost.DefaultLogKeep
}

// parseLogName accepts only the names the service host gives its files:
// stdout.log, stderr.log, wrapper.log and their rotations NAME.1, NAME.2...
// Anything else (a path, a drive, a stream, another file of the service)
// is refused, so a cursor can never point outside the log directory.
func parseLogName(name string) (base string, index int, err error) {
	for _, b := range logStreamFiles {
		if name == b {
			return b, 0, nil
		}
		rest, ok := strings.CutPrefix(name, b+".")
		if ok && len(rest) >= 1 && len(rest) <= 4 && rest[0] != '0' && strings.Trim(rest, "0123456789") == "" {
			n, _ := strconv.Atoi(rest)
			return b, n, nil
		}
	}
	return "", 0, failf(protocol.CodeInvalidName, "log cursor file %q is not one of a wrapped service's log files (stdout.log, stderr.log, wrapper.log, or a rotation of one such as stdout.log.1)", name)
}

// newestOutput is the base name of whichever of the program's two streams
// it wrote to last, or "" if it wrote to neither. The service host creates
// both files empty when it starts, so an empty one does not count.
func newestOutput(dir string) string {
	var best string
	var bestInfo fs.FileInfo
	for _, stream := range []string{protocol.StreamStdout, protocol.StreamStderr} {
		fi, err := os.Stat(filepath.Join(dir, logStreamFiles[stream]))
		if err != nil || fi.Size() == 0 {
			continue
		}
		if bestInfo == nil || fi.ModTime().After(bestInfo.ModTime()) {
			best, bestInfo = logStreamFiles[stream], fi
		}
	}
	return best
}

// logFamily is one stream's files: the current one, base, and its
// rotations base.1 (the newest) to base.keep, as servicehost.RotatingFile
// names them.
type logFamily struct {
	dir  string
	base string
	keep int
}

func (lf logFamily) name(i int) string {
	if i == 0 {
		return lf.base
	}
	return fmt.Sprintf("%s.%d", lf.base, i)
}

// logFile is an open file of a family. Its size is taken once, when it is
// opened: what the service writes after that is for the next answer.
type logFile struct {
	*os.File
	index int
	id    string
	size  int64
}

func (lf logFamily) open(i int) (*logFile, error) {
	f, err := openLog(filepath.Join(lf.dir, lf.name(i)))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		var id string
		if id, err = logFileID(f); err == nil {
			return &logFile{File: f, index: i, id: id, size: fi.Size()}, nil
		}
	}
	f.Close()
	return nil, err
}

// tail returns the last n lines of the stream, from the current file and,
// if it holds fewer, from the rotated ones before it, oldest first, within
// budget bytes. The cursor is at the end of the current file's last
// complete line.
func (lf logFamily) tail(n int, budget int64) (protocol.LogsResult, error) {
	res := protocol.LogsResult{Lines: []string{}, Cursor: protocol.LogCursor{File: lf.base}}
	var newestFirst [][]string
	seen := map[string]bool{}
	for i := 0; i <= lf.keep && n > 0 && budget > 0; i++ {
		f, err := lf.open(i)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a failed rotation can leave a gap; older files may follow
		}
		if err != nil {
			return res, err
		}
		if seen[f.id] {
			// A rotation moved the file just read to this name meanwhile.
			f.Close()
			continue
		}
		seen[f.id] = true
		end := f.size
		if i == 0 {
			if end, err = completeEnd(f, f.size); err != nil {
				f.Close()
				return res, err
			}
			res.Cursor = protocol.LogCursor{File: lf.base, Offset: end, FileID: f.id}
		}
		data, err := tailRegion(f, end, n, budget)
		f.Close()
		if err != nil {
			return res, err
		}
		lines := splitLines(data)
		n -= len(lines)
		budget -= int64(len(data))
		newestFirst = append(newestFirst, lines)
	}
	for i := len(newestFirst) - 1; i >= 0; i-- {
		res.Lines = append(res.Lines, newestFirst[i]...)
	}
	return res, nil
}

// follow returns what was written after cursor c, whose file name has
// rotation index idx. A rotated file is finished first, then the answer
// moves on to the file written after it, with Rotated set.
func (lf logFamily) follow(c protocol.LogCursor, idx int) (protocol.LogsResult, error) {
	res := protocol.LogsResult{Lines: []string{}, Cursor: protocol.LogCursor{File: lf.base}}
	f, err := lf.find(c, idx)
	if err != nil {
		return res, err
	}
	offset := c.Offset
	if f == nil || f.size < offset {
		// The cursor's file is gone (rotated past keep) or was replaced
		// by a shorter one: start over at the current file.
		if f != nil {
			f.Close()
		}
		res.Rotated = c.FileID != "" || c.Offset != 0
		offset = 0
		if f, err = lf.open(0); errors.Is(err, fs.ErrNotExist) {
			return res, nil
		} else if err != nil {
			return res, err
		}
	}
	for {
		lines, next, err := readLines(f, offset, maxLogAnswer, f.index > 0)
		if err != nil {
			f.Close()
			return res, err
		}
		if len(lines) > 0 || f.index == 0 || res.Rotated {
			res.Lines = append(res.Lines, lines...)
			res.Cursor = protocol.LogCursor{File: lf.name(f.index), Offset: next, FileID: f.id}
			f.Close()
			return res, nil
		}
		// A rotated file read to its end: go on with the one written
		// after it.
		newer, err := lf.newerThan(f)
		if err != nil || newer == nil {
			res.Cursor = protocol.LogCursor{File: lf.name(f.index), Offset: next, FileID: f.id}
			f.Close()
			return res, err
		}
		f.Close()
		f, offset, res.Rotated = newer, 0, true
	}
}

// find opens the cursor's file: the file under the cursor's name if it is
// still the same file, else the rotated file that is, or nil if none is.
// A cursor without an id (the file did not exist when it was made) trusts
// the name.
func (lf logFamily) find(c protocol.LogCursor, idx int) (*logFile, error) {
	f, err := lf.open(idx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if f != nil {
		if c.FileID == "" || f.id == c.FileID {
			return f, nil
		}
		f.Close()
	}
	if c.FileID == "" {
		return nil, nil
	}
	for i := 0; i <= lf.keep; i++ {
		if i == idx {
			continue
		}
		g, err := lf.open(i)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if g.id == c.FileID {
			return g, nil
		}
		g.Close()
	}
	return nil, nil
}

// newerThan opens the file written after rotated file f, skipping f
// itself should a rotation have moved it one name further meanwhile.
func (lf logFamily) newerThan(f *logFile) (*logFile, error) {
	for j := f.index - 1; j >= 0; j-- {
		g, err := lf.open(j)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if g.id == f.id {
			g.Close()
			continue
		}
		return g, nil
	}
	return nil, nil
}

// readLines reads the whole lines after offset, at most budget bytes, and
// returns them with the offset after them. A last line without its newline
// is held back, as the service is still writing it, unless the file is
// final (rotated: nothing more will be appended). A line longer than budget
// is passed on in pieces, so a follower always makes progress.
func readLines(f *logFile, offset, budget int64, final bool) ([]string, int64, error) {
	avail := f.size - offset
	if avail <= 0 {
		return nil, offset, nil
	}
	n := min(avail, budget)
	buf := make([]byte, n)
	if err := readFullAt(f, buf, offset); err != nil {
		return nil, offset, err
	}
	complete := buf
	if !final || n < avail {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			complete = buf[:i+1]
		} else if n < budget {
			complete = nil
		}
	}
	return splitLines(complete), offset + int64(len(complete)), nil
}

// completeEnd is the offset just after the last newline before size, the
// end of the last line the service finished writing.
func completeEnd(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, tailChunk)
	for end := size; end > 0; {
		start := max(end-tailChunk, 0)
		chunk := buf[:end-start]
		if err := readFullAt(r, chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// tailRegion returns the bytes of the last n lines ending at end, reading
// backwards, at most budget bytes of them. Over budget, only whole lines
// are kept, unless a single line alone is longer (then its end is).
func tailRegion(r io.ReaderAt, end int64, n int, budget int64) ([]byte, error) {
	var buf []byte
	start := end
	for start > 0 && int64(len(buf)) < budget {
		step := min(max(tailChunk, int64(len(buf))), start, budget-int64(len(buf)))
		chunk := make([]byte, step, step+int64(len(buf)))
		if err := readFullAt(r, chunk, start-step); err != nil {
			return nil, err
		}
		buf = append(chunk, buf...)
		start -= step
		if cut := lastLinesStart(buf, n); cut >= 0 {
			return buf[cut:], nil
		}
	}
	if start > 0 && len(buf) > 1 {
		if i := bytes.IndexByte(buf[:len(buf)-1], '\n'); i >= 0 {
			return buf[i+1:], nil
		}
	}
	return buf, nil
}

// lastLinesStart is where the last n lines of buf begin, or -1 if buf may
// hold more of the first of them. The last byte is the last line's newline
// (or part of an unfinished final line), so the search starts before it.
func lastLinesStart(buf []byte, n int) int {
	for i := len(buf) - 2; i >= 0; i-- {
		if buf[i] == '\n' {
			if n--; n == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// splitLines cuts data into lines without their line ends (Windows
// programs write CRLF).
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// readFullAt fills p from offset off; a file that shrank meanwhile (it
// was truncated) is an error rather than a short answer.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	_, err := io.ReadFull(io.NewSectionReader(r, off, int64(len(p))), p)
	return err
}
