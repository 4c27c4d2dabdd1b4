package winrm

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	mz "github.com/masterzen/winrm"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The Command envelope gsd sends, pinned: stdin is a pipe
// (WINRS_CONSOLEMODE_STDIN=FALSE) because gsd streams into it, the
// command runs through cmd.exe, and the command line survives XML.
func TestCommandEnvelopeGolden(t *testing.T) {
	params := mz.NewParameters("PT30.000S", "en-US", responseEnvelopeSize)
	msg := newCommandRequest("http://10.0.0.5:5985/wsman", "11111111-2222-3333-4444-555555555555",
		`if exist "C:\ProgramData\gsd\bin\x\gsd-agent.exe" ("C:\ProgramData\gsd\bin\x\gsd-agent.exe" serve) else (echo a]]>b & echo <c>)`,
		params, "uuid:00000000-0000-4000-8000-000000000000")
	got := msg.String()
	msg.Free()
	path := filepath.Join("testdata", "command.golden.xml")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("Command envelope changed (go test ./providers/winrm -run Golden -update to accept):\n%s", got)
	}
	for _, must := range []string{`<w:Option Name="WINRS_CONSOLEMODE_STDIN">FALSE</w:Option>`, `<w:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</w:Option>`} {
		if !strings.Contains(got, must) {
			t.Errorf("envelope lacks %s", must)
		}
	}
}

func TestMessageIDsAreUUIDs(t *testing.T) {
	re := regexp.MustCompile(`^uuid:[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	a, b := newMessageID(), newMessageID()
	if !re.MatchString(a) || a == b {
		t.Errorf("ids %s, %s", a, b)
	}
}
