package views

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-runewidth"
	"github.com/pterm/pterm"
)

// Diagnostics renders diagnostics for people: severity and summary, then
// file:line:col with the block it sits in, the source line with the
// offending part underlined, and the detail.
func Diagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	var b bytes.Buffer
	for i, d := range diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeDiagnostic(&b, files, d, color)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func writeDiagnostic(b *bytes.Buffer, files map[string]*hcl.File, d *hcl.Diagnostic, color bool) {
	paint := func(c pterm.Color, s string) string {
		if !color {
			return s
		}
		return c.Sprint(s)
	}
	switch d.Severity {
	case hcl.DiagWarning:
		fmt.Fprintf(b, "%s %s\n", paint(pterm.FgYellow, "Warning:"), paint(pterm.Bold, d.Summary))
	default:
		fmt.Fprintf(b, "%s %s\n", paint(pterm.FgRed, "Error:"), paint(pterm.Bold, d.Summary))
	}
	if d.Subject != nil {
		r := *d.Subject
		fmt.Fprintf(b, "\n  on %s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
		f := files[r.Filename]
		if f != nil {
			if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
				if ctx := cs.ContextString(r.Start.Byte); ctx != "" {
					fmt.Fprintf(b, ", in %s", ctx)
				}
			}
		}
		b.WriteString(":\n")
		if f != nil && !hidesSnippet(d) {
			writeSnippet(b, f.Bytes, r, paint)
		}
	}
	if d.Detail != "" {
		b.WriteByte('\n')
		b.WriteString(wrap(d.Detail, 78))
		b.WriteByte('\n')
	}
}

// hidesSnippet reports whether the diagnostic's source line must not be
// quoted because it holds a secret; the config package marks those.
func hidesSnippet(d *hcl.Diagnostic) bool {
	h, ok := d.Extra.(interface{ HideSnippet() bool })
	return ok && h.HideSnippet()
}

// writeSnippet prints the first line of the range with its number and a
// row of carets under the part the range covers.
func writeSnippet(b *bytes.Buffer, src []byte, r hcl.Range, paint func(pterm.Color, string) string) {
	lines := bytes.Split(src, []byte("\n"))
	n := r.Start.Line
	if n < 1 || n > len(lines) {
		return
	}
	line := strings.TrimRight(string(lines[n-1]), "\r")
	prefix := fmt.Sprintf("  %4d: ", n)
	fmt.Fprintf(b, "%s%s\n", prefix, strings.ReplaceAll(line, "\t", " "))
	// HCL columns count characters; the caret row needs display cells,
	// which differ for wide characters such as CJK.
	runes := []rune(strings.ReplaceAll(line, "\t", " "))
	start := min(max(r.Start.Column-1, 0), len(runes))
	end := len(runes)
	if r.End.Line == r.Start.Line {
		end = min(max(r.End.Column-1, start+1), len(runes))
	}
	indent := runewidth.StringWidth(string(runes[:start]))
	width := max(runewidth.StringWidth(string(runes[start:end])), 1)
	fmt.Fprintf(b, "%s%s\n", strings.Repeat(" ", len(prefix)+indent), paint(pterm.FgRed, strings.Repeat("^", width)))
}

// wrap breaks prose at spaces so long details stay readable in a
// terminal; words longer than the width are left whole.
func wrap(s string, width int) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		var line strings.Builder
		for _, word := range strings.Fields(para) {
			if line.Len() > 0 && line.Len()+1+len(word) > width {
				out = append(out, line.String())
				line.Reset()
			}
			if line.Len() > 0 {
				line.WriteByte(' ')
			}
			line.WriteString(word)
		}
		out = append(out, line.String())
	}
	return strings.Join(out, "\n")
}

// DiagnosticsSummary is the last line of a validate run.
func DiagnosticsSummary(diags hcl.Diagnostics) string {
	errs, warns := count(diags)
	switch {
	case errs == 0 && warns == 0:
		return "The configuration is valid."
	case errs == 0:
		return fmt.Sprintf("The configuration is valid, with %s.", plural(warns, "warning"))
	}
	s := fmt.Sprintf("The configuration is invalid: %s", plural(errs, "error"))
	if warns > 0 {
		s += ", " + plural(warns, "warning")
	}
	return s + "."
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func count(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// JSONDiagnostic is the machine-readable form of one diagnostic, in the
// shape of Terraform's -json diagnostics so tooling built for those reads
// it.
type JSONDiagnostic struct {
	Severity string       `json:"severity"`
	Summary  string       `json:"summary"`
	Detail   string       `json:"detail,omitempty"`
	Range    *JSONRange   `json:"range,omitempty"`
	Snippet  *JSONSnippet `json:"snippet,omitempty"`
}

// JSONSnippet is the source line a diagnostic points at. The highlight
// offsets are byte offsets into Code.
type JSONSnippet struct {
	Context              *string `json:"context"`
	Code                 string  `json:"code"`
	StartLine            int     `json:"start_line"`
	HighlightStartOffset int     `json:"highlight_start_offset"`
	HighlightEndOffset   int     `json:"highlight_end_offset"`
}

func snippet(f *hcl.File, r hcl.Range) *JSONSnippet {
	src := f.Bytes
	if r.Start.Byte < 0 || r.Start.Byte > len(src) {
		return nil
	}
	lineStart := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[r.Start.Byte:], '\n'); i >= 0 {
		lineEnd = r.Start.Byte + i
	}
	code := strings.TrimRight(string(src[lineStart:lineEnd]), "\r")
	end := min(max(r.End.Byte, r.Start.Byte), lineStart+len(code))
	s := &JSONSnippet{
		Code:                 code,
		StartLine:            r.Start.Line,
		HighlightStartOffset: r.Start.Byte - lineStart,
		HighlightEndOffset:   end - lineStart,
	}
	if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
		if c := cs.ContextString(r.Start.Byte); c != "" {
			s.Context = &c
		}
	}
	return s
}

// JSONRange is a source range; lines and columns count from 1.
type JSONRange struct {
	Filename string  `json:"filename"`
	Start    JSONPos `json:"start"`
	End      JSONPos `json:"end"`
}

// JSONPos is a position in a source file.
type JSONPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// JSONValidation is the output of gsd validate -json.
type JSONValidation struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []JSONDiagnostic `json:"diagnostics"`
}

// ValidationJSON renders the result of validate as JSON.
func ValidationJSON(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	errs, warns := count(diags)
	out := JSONValidation{FormatVersion: "1.0", Valid: errs == 0, ErrorCount: errs, WarningCount: warns, Diagnostics: []JSONDiagnostic{}}
	for _, d := range diags {
		out.Diagnostics = append(out.Diagnostics, jsonDiagnostic(files, d))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// jsonDiagnostic is d's machine-readable form, with its source line
// unless the diagnostic is about a secret.
func jsonDiagnostic(files map[string]*hcl.File, d *hcl.Diagnostic) JSONDiagnostic {
	jd := JSONDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
	if d.Severity == hcl.DiagWarning {
		jd.Severity = "warning"
	}
	if d.Subject != nil {
		r := *d.Subject
		jd.Range = &JSONRange{
			Filename: r.Filename,
			Start:    JSONPos{r.Start.Line, r.Start.Column, r.Start.Byte},
			End:      JSONPos{r.End.Line, r.End.Column, r.End.Byte},
		}
		if f := files[r.Filename]; f != nil && !hidesSnippet(d) {
			jd.Snippet = snippet(f, r)
		}
	}
	return jd
}
