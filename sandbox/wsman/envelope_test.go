package wsman

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

const sample = `<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">
<env:Header>
<a:To>http://10.0.0.1:5985/wsman</a:To>
<a:ReplyTo><a:Address mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
<w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize>
<a:MessageID>uuid:5D2D9E5B-7F55-4D5D-9E6A-0E6B7B0F0A11</a:MessageID>
<w:Locale xml:lang="en-US" mustUnderstand="false"/>
<w:OperationTimeout>PT20S</w:OperationTimeout>
<w:ResourceURI mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>
<a:Action mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command</a:Action>
<w:SelectorSet><w:Selector Name="ShellId">11111111-2222-3333-4444-555555555555</w:Selector></w:SelectorSet>
<w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option><w:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</w:Option></w:OptionSet>
</env:Header>
<env:Body><rsp:CommandLine><rsp:Command><![CDATA[echo a & echo b]]></rsp:Command><rsp:Arguments>x</rsp:Arguments></rsp:CommandLine></env:Body>
</env:Envelope>`

func TestDecode(t *testing.T) {
	env, err := Decode([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if env.Action != ActionCommand || env.ResourceURI != ResourceCmd || env.MaxEnvelopeSize != 153600 ||
		env.OperationTimeout != 20*time.Second || env.Selectors["ShellId"] != "11111111-2222-3333-4444-555555555555" ||
		env.Options["WINRS_SKIP_CMD_SHELL"] != "FALSE" || env.Locale != "en-US" {
		t.Errorf("decoded %+v", env)
	}
	if got := env.Body.Child(NSShell, "Command").Text; got != "echo a & echo b" {
		t.Errorf("command %q", got)
	}
}

func TestDecodeRejects(t *testing.T) {
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` +
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>&lol2;</s:Body></s:Envelope>`
	cases := map[string]string{
		"not xml":         "hello",
		"unclosed":        `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>`,
		"entity bomb":     bomb,
		"external entity": `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`,
		"soap 1.1":        `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body/></s:Envelope>`,
		"no header":       `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`,
		"no action":       `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/></s:Envelope>`,
		"deep":            strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100),
		"bad timeout":     strings.Replace(sample, "PT20S", "soon", 1),
		"bad size":        strings.Replace(sample, "153600", "-1", 1),
		"two roots":       `<a/><b/>`,
		"latin1":          `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
	}
	for name, doc := range cases {
		_, err := Decode([]byte(doc))
		var f *Fault
		if !errors.As(err, &f) {
			t.Errorf("%s: err = %v, want a *Fault", name, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT60S": time.Minute, "PT60.000S": time.Minute, "PT1M30S": 90 * time.Second,
		"P0DT0H1M0S": time.Minute, "PT0.5S": 500 * time.Millisecond, "P1D": 24 * time.Hour,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "P", "PT", "60", "P1Y", "PTS", "PT1H1D", "PT99999999999S"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestFaultRendersAsWindows(t *testing.T) {
	out := string(TimedOut().Render("uuid:1", "HOST"))
	for _, want := range []string{`<s:Value>s:Receiver</s:Value>`, `<s:Value>w:TimedOut</s:Value>`,
		`Code="2150858793"`, `Machine="HOST"`, "OperationTimeout", `<a:RelatesTo>uuid:1</a:RelatesTo>`} {
		if !strings.Contains(out, want) {
			t.Errorf("fault lacks %s", want)
		}
	}
	if _, err := Decode([]byte(out)); err != nil {
		t.Errorf("our own fault does not decode: %v", err)
	}
}

// FuzzDecodeEnvelope checks the decoder never panics, and that whatever
// it accepts has the headers every handler relies on.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/></s:Envelope>`))
	f.Add(TimedOut().Render("uuid:1", "h"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Decode(data)
		if err != nil {
			var fault *Fault
			if !errors.As(err, &fault) {
				t.Fatalf("error is not a fault: %v", err)
			}
			return
		}
		if env.Action == "" || env.MessageID == "" {
			t.Fatalf("accepted an envelope without Action or MessageID")
		}
	})
}

func TestLongTextSurvivesTheFastPath(t *testing.T) {
	payload := strings.Repeat("QUJDRA==\r\n", 2000) + "AAAA"
	doc := strings.Replace(sample, "<rsp:Arguments>x</rsp:Arguments>",
		"<rsp:Arguments>"+payload+"</rsp:Arguments><rsp:Arguments>"+payload+"&amp;</rsp:Arguments>", 1)
	env, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	args := env.Body.All(NSShell, "Arguments")
	want := strings.ReplaceAll(payload, "\r\n", "\n") // XML end-of-line handling
	if len(args) != 2 || args[0].Text != want || args[1].Text != want+"&" {
		t.Fatalf("long text changed on the way through the decoder")
	}
	// A long run outside any element is still refused.
	if _, err := Decode([]byte(sample + strings.Repeat("A", 10000) + "<x/>")); err == nil {
		t.Error("trailing text accepted")
	}
}

// TestTextInManyPiecesIsLinear: text cut into many pieces by comments
// costs memory in proportion to its length. Allocated bytes are compared
// between two sizes in the same run: six times the pieces may cost about
// six times the bytes, where joining by string concatenation costs
// thirty-six.
func TestTextInManyPiecesIsLinear(t *testing.T) {
	doc := func(pieces int) []byte {
		return []byte("<a>" + strings.Repeat("x y<!--c-->", pieces) + "</a>")
	}
	allocated := func(data []byte) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e, err := parse(data)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Text) != len("x y")*bytes.Count(data, []byte("<!--")) {
			t.Fatalf("text of %d bytes", len(e.Text))
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := allocated(doc(10_000)), allocated(doc(60_000))
	if ratio := float64(large) / float64(small); ratio > 12 {
		t.Fatalf("6x the pieces allocated %.1fx the bytes (%d vs %d): quadratic", ratio, large, small)
	}
}
