package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/servicehost"
)

// logsOf calls logs and returns the answer.
func (s *session) logs(id string, args protocol.LogsArgs) protocol.LogsResult {
	s.t.Helper()
	var res protocol.LogsResult
	s.call(id, protocol.OpLogs, args, &res)
	return res
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func numbered(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") + "\n" }

func TestLogsTailSpansRotationAndHoldsBackPartialLine(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	dir := a.layout.LogDir("api")
	writeFile(t, filepath.Join(dir, "stdout.log.2"), joinLines(numbered(1, 3)))
	writeFile(t, filepath.Join(dir, "stdout.log.1"), joinLines(numbered(4, 6)))
	complete := joinLines(numbered(7, 9))
	writeFile(t, filepath.Join(dir, "stdout.log"), complete+"line 10 is not fini")
	writeFile(t, filepath.Join(dir, "stderr.log"), "")

	for _, c := range []struct {
		lines int
		want  []string
	}{
		{2, numbered(8, 9)},
		{3, numbered(7, 9)},
		{5, numbered(5, 9)},
		{0, numbered(1, 9)}, // the default, 100, is more than there is
	} {
		res := s.logs(fmt.Sprint("tail", c.lines), protocol.LogsArgs{Service: "api", Lines: c.lines})
		if !slices.Equal(res.Lines, c.want) {
			t.Fatalf("tail %d: %q, want %q", c.lines, res.Lines, c.want)
		}
		if res.Cursor.File != "stdout.log" || res.Cursor.Offset != int64(len(complete)) || res.Cursor.FileID == "" || res.Rotated {
			t.Fatalf("tail %d: cursor %+v rotated %v, want before the partial line", c.lines, res.Cursor, res.Rotated)
		}
	}
	// The wrapper's own log is a stream of its own.
	writeFile(t, filepath.Join(dir, "wrapper.log"), "started pid 7\r\n")
	if res := s.logs("w", protocol.LogsArgs{Service: "api", Stream: "wrapper"}); !slices.Equal(res.Lines, []string{"started pid 7"}) || res.Cursor.File != "wrapper.log" {
		t.Fatalf("wrapper stream: %+v", res)
	}
}

func TestLogsFollowReturnsOnlyCompleteNewLines(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	path := filepath.Join(a.layout.LogDir("api"), "stderr.log")
	writeFile(t, path, "one\ntw")
	res := s.logs("t", protocol.LogsArgs{Service: "api"})
	if !slices.Equal(res.Lines, []string{"one"}) || res.Cursor.File != "stderr.log" {
		t.Fatalf("tail: %+v (the program wrote only to stderr)", res)
	}
	cur := res.Cursor
	res = s.logs("f1", protocol.LogsArgs{Service: "api", After: &cur})
	if len(res.Lines) != 0 || res.Cursor != cur {
		t.Fatalf("nothing complete was written, got %+v", res)
	}
	appendFile(t, path, "o\nthree\nfo")
	res = s.logs("f2", protocol.LogsArgs{Service: "api", After: &cur})
	if !slices.Equal(res.Lines, []string{"two", "three"}) || res.Rotated {
		t.Fatalf("follow: %+v", res)
	}
	cur = res.Cursor
	appendFile(t, path, "ur\n")
	res = s.logs("f3", protocol.LogsArgs{Service: "api", After: &cur})
	if !slices.Equal(res.Lines, []string{"four"}) {
		t.Fatalf("follow: %+v", res)
	}
}

// Following across rotations by the service host's own RotatingFile loses
// no line: the rest of the rotated file comes first, then the new file
// from its start, marked Rotated.
func TestLogsFollowAcrossRotation(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	rf, err := servicehost.OpenRotating(filepath.Join(a.layout.LogDir("api"), "stdout.log"), 64, servicehost.DefaultLogKeep)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	next := 1
	write := func(n int) {
		for i := 0; i < n; i++ {
			fmt.Fprintf(rf, "line %d\n", next)
			next++
		}
	}
	write(3)
	res := s.logs("t", protocol.LogsArgs{Service: "api", Stream: "stdout"})
	if !slices.Equal(res.Lines, numbered(1, 3)) {
		t.Fatalf("tail: %q", res.Lines)
	}
	cur := res.Cursor
	write(20) // 7 bytes a line, 9 lines a file: two rotations
	var got []string
	rotated := 0
	for i := 0; i < 10; i++ {
		res = s.logs(fmt.Sprint("f", i), protocol.LogsArgs{Service: "api", After: &cur})
		if res.Rotated {
			rotated++
		}
		if len(res.Lines) == 0 && res.Cursor == cur {
			break
		}
		got = append(got, res.Lines...)
		cur = res.Cursor
	}
	if !slices.Equal(got, numbered(4, 23)) {
		t.Fatalf("followed %q, want lines 4 to 23", got)
	}
	if rotated != 2 || cur.File != "stdout.log" {
		t.Fatalf("%d answers said rotated, cursor %+v; want 2, in stdout.log", rotated, cur)
	}
}

// A cursor whose file is gone, or shorter than its offset, starts again at
// the current file and says so.
func TestLogsCursorOfRotatedAwayFile(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	path := filepath.Join(a.layout.LogDir("api"), "stdout.log")
	writeFile(t, path, joinLines(numbered(1, 50)))
	cur := s.logs("t", protocol.LogsArgs{Service: "api"}).Cursor
	// Rotated away past keep, and a new file written. (Moved aside, not
	// removed: Linux may hand a removed file's inode to the next file,
	// while NTFS file indexes carry a sequence number against that.)
	if err := os.Rename(path, path+".gone"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, joinLines(numbered(1, 2)))
	res := s.logs("f", protocol.LogsArgs{Service: "api", After: &cur})
	if !res.Rotated || !slices.Equal(res.Lines, numbered(1, 2)) || res.Cursor.FileID == cur.FileID {
		t.Fatalf("after rotation: %+v", res)
	}
	// A cursor without an id (made before the file existed) trusts the
	// name, but not an offset past the end.
	res = s.logs("f2", protocol.LogsArgs{Service: "api", After: &protocol.LogCursor{File: "stdout.log", Offset: 1 << 20}})
	if !res.Rotated || !slices.Equal(res.Lines, numbered(1, 2)) {
		t.Fatalf("offset past the end: %+v", res)
	}
}

// An answer carries at most maxLogAnswer bytes of text; the cursor points
// where it stopped and the next answer goes on from there.
func TestLogsAnswerIsBounded(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	path := filepath.Join(a.layout.LogDir("api"), "stdout.log")
	line := strings.Repeat("x", 99)
	total := maxLogAnswer/100 + 5000
	writeFile(t, path, strings.Repeat(line+"\n", total))
	res := s.logs("t", protocol.LogsArgs{Service: "api", Lines: 1 << 30})
	if len(res.Lines) != maxLogLines {
		t.Fatalf("tail gave %d lines, want the cap %d", len(res.Lines), maxLogLines)
	}
	cur := protocol.LogCursor{File: "stdout.log", FileID: res.Cursor.FileID}
	got := 0
	for i := 0; ; i++ {
		res = s.logs(fmt.Sprint("f", i), protocol.LogsArgs{Service: "api", After: &cur})
		if len(res.Lines) == 0 {
			break
		}
		if len(res.Lines)*100 > maxLogAnswer {
			t.Fatalf("answer of %d bytes", len(res.Lines)*100)
		}
		got += len(res.Lines)
		cur = res.Cursor
	}
	if got != total || cur.Offset != int64(total*100) {
		t.Fatalf("followed %d lines to offset %d, want %d", got, cur.Offset, total)
	}
}

func TestLogsOfNativeServiceUnsupported(t *testing.T) {
	_, _, s := managedAgent(t, protocol.ModeNative, true)
	ev := s.callErr("l", protocol.OpLogs, protocol.LogsArgs{Service: "api"}, protocol.CodeUnsupported)
	if !strings.Contains(ev.Error.Message, "event log") {
		t.Fatalf("message %q does not say where native services log", ev.Error.Message)
	}
	s.callErr("n", protocol.OpLogs, protocol.LogsArgs{Service: "ghost"}, protocol.CodeNotFound)
}

func TestLogsRefusesHostileCursors(t *testing.T) {
	a, _, s := managedAgent(t, protocol.ModeWrapped, true)
	// A file the service's log directory does hold, but that is no log.
	writeFile(t, a.layout.WrapperStatus("api"), `{"starts":1}`)
	for _, name := range []string{
		"", ".", "..", "../../state.json", `..\..\state.json`, "logs/stdout.log", `C:\Windows\win.ini`,
		"/etc/passwd", `\\host\share\x`, "stdout.log:hidden", "stdout.log.", "stdout.log.0", "stdout.log.01",
		"stdout.log.1/../../../state.json", "stdout.log.99999", "stdout.log.-1", "wrapper-status.json", "STDOUT.LOG", "stdout.logx",
	} {
		s.callErr("c", protocol.OpLogs, protocol.LogsArgs{Service: "api", After: &protocol.LogCursor{File: name}}, protocol.CodeInvalidName)
	}
	s.callErr("o", protocol.OpLogs, protocol.LogsArgs{Service: "api", After: &protocol.LogCursor{File: "stdout.log", Offset: -1}}, protocol.CodeBadRequest)
	s.callErr("s", protocol.OpLogs, protocol.LogsArgs{Service: "api", Stream: "../state"}, protocol.CodeBadRequest)
	s.callErr("m", protocol.OpLogs, protocol.LogsArgs{Service: "api", Stream: "stderr", After: &protocol.LogCursor{File: "stdout.log"}}, protocol.CodeBadRequest)
	s.callErr("l", protocol.OpLogs, protocol.LogsArgs{Service: "api", Lines: -1}, protocol.CodeBadRequest)
	s.callErr("n", protocol.OpLogs, protocol.LogsArgs{Service: `..\api`}, protocol.CodeInvalidName)
	// Rotations the agent may name itself are accepted.
	s.logs("ok", protocol.LogsArgs{Service: "api", After: &protocol.LogCursor{File: "stderr.log.3"}})
}
