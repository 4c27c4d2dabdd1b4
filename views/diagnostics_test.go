package views

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/mattn/go-runewidth"
)

func parse(t *testing.T, src string) map[string]*hcl.File {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return map[string]*hcl.File{"t.hcl": f}
}

func rangeOf(src, sub string) hcl.Range {
	i := strings.Index(src, sub)
	line := strings.Count(src[:i], "\n") + 1
	col := len([]rune(src[strings.LastIndex(src[:i], "\n")+1:i])) + 1
	return hcl.Range{
		Filename: "t.hcl",
		Start:    hcl.Pos{Line: line, Column: col, Byte: i},
		End:      hcl.Pos{Line: line, Column: col + len([]rune(sub)), Byte: i + len(sub)},
	}
}

// Carets sit under the offending text even after wide characters.
func TestCaretsUnderWideCharacters(t *testing.T) {
	src := "x = { name = \"日本\", port = \"abc\" }\n"
	files := parse(t, src)
	r := rangeOf(src, `"abc"`)
	var b bytes.Buffer
	Diagnostics(&b, files, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Bad port", Subject: &r}}, false)
	lines := strings.Split(b.String(), "\n")
	var code, carets string
	for i, l := range lines {
		if strings.Contains(l, "   1: ") {
			code, carets = l, lines[i+1]
		}
	}
	// "日本" is two characters, six bytes and four display cells; the
	// carets must start at the cell where "abc" is drawn.
	want := runewidth.StringWidth(code[:strings.Index(code, `"abc"`)])
	if want != len([]rune(code[:strings.Index(code, `"abc"`)]))+2 {
		t.Fatalf("test premise: wide characters should add two cells")
	}
	if got := strings.Index(carets, "^"); got != want || strings.Count(carets, "^") != 5 {
		t.Errorf("carets at %d (x%d), want %d (x5):\n%s\n%s", got, strings.Count(carets, "^"), want, code, carets)
	}
}

type secret struct{}

func (secret) HideSnippet() bool { return true }

func TestHiddenSnippets(t *testing.T) {
	src := "password = \"hunter2\"\n"
	files := parse(t, src)
	r := rangeOf(src, `"hunter2"`)
	diags := hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Literal", Subject: &r, Extra: secret{}}}
	var text, js bytes.Buffer
	Diagnostics(&text, files, diags, false)
	ValidationJSON(&js, files, diags)
	if strings.Contains(text.String()+js.String(), "hunter2") {
		t.Errorf("a hidden snippet was shown:\n%s\n%s", text.String(), js.String())
	}
	if !strings.Contains(text.String(), "t.hcl:1:12") {
		t.Errorf("the position must still be shown:\n%s", text.String())
	}
	var v JSONValidation
	if err := json.Unmarshal(js.Bytes(), &v); err != nil || v.Valid != true || v.WarningCount != 1 {
		t.Errorf("json: %v %+v", err, v)
	}
}

func TestRendererToleratesOddRanges(t *testing.T) {
	files := parse(t, "a = 1\n")
	for _, r := range []hcl.Range{
		{Filename: "t.hcl", Start: hcl.Pos{Line: 99, Column: 1, Byte: 500}, End: hcl.Pos{Line: 99, Column: 2, Byte: 501}},
		{Filename: "t.hcl", Start: hcl.Pos{Line: 1, Column: 40, Byte: 40}, End: hcl.Pos{Line: 1, Column: 1, Byte: 0}},
		{Filename: "other.hcl", Start: hcl.Pos{Line: 1, Column: 1}},
	} {
		var b bytes.Buffer
		Diagnostics(&b, files, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "S", Subject: &r}}, true)
		ValidationJSON(&b, files, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "S", Subject: &r}})
	}
}
