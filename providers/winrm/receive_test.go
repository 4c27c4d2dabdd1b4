package winrm

import (
	"bytes"
	"strings"
	"testing"

	mz "github.com/masterzen/winrm"
)

const receiveDone = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse>
<rsp:Stream Name="stdout" CommandId="1">aGVsbG8g</rsp:Stream>
<rsp:Stream Name="stderr" CommandId="1">b29wcw==</rsp:Stream>
<rsp:Stream Name="stdout" CommandId="1">d29ybGQ=</rsp:Stream>
<rsp:Stream Name="stdout" CommandId="1" End="true"></rsp:Stream>
<rsp:CommandState CommandId="1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState>
</rsp:ReceiveResponse></s:Body></s:Envelope>`

const receiveRunning = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:x="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><x:ReceiveResponse>
<x:Stream Name="stdout" CommandId="1">YWJj</x:Stream>
<x:CommandState CommandId="1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/>
</x:ReceiveResponse></s:Body></s:Envelope>`

func TestParseReceive(t *testing.T) {
	var out, errOut bytes.Buffer
	done, code, err := parseReceive([]byte(receiveDone), &out, &errOut)
	if err != nil || !done || code != 3 || out.String() != "hello world" || errOut.String() != "oops" {
		t.Fatalf("done: %v %d %v %q %q", done, code, err, out.String(), errOut.String())
	}
	out.Reset()
	// Another prefix for the same namespace is the same document.
	done, _, err = parseReceive([]byte(receiveRunning), &out, &errOut)
	if err != nil || done || out.String() != "abc" {
		t.Fatalf("running: %v %v %q", done, err, out.String())
	}
	for _, bad := range []string{`<a>`, `<rsp:Stream xmlns:rsp="` + shellNS + `" Name="stdout">!!notbase64</rsp:Stream>`,
		`<rsp:CommandState xmlns:rsp="` + shellNS + `" State="` + stateDone + `"><rsp:ExitCode>x</rsp:ExitCode></rsp:CommandState>`} {
		if _, _, err := parseReceive([]byte(bad), &out, &errOut); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// FuzzParseReceive checks the streaming parser against masterzen/winrm's
// own (which gsd used before, and which panics on a document that is not
// XML): on every document both read, the streams, the end and the exit
// code agree; and ours never panics.
func FuzzParseReceive(f *testing.F) {
	f.Add(receiveDone)
	f.Add(receiveRunning)
	f.Add(strings.ReplaceAll(receiveDone, "3</rsp:ExitCode>", "0</rsp:ExitCode>"))
	f.Fuzz(func(t *testing.T, doc string) {
		var a, aerr, b, berr bytes.Buffer
		done, code, err := parseReceive([]byte(doc), &a, &aerr)
		if err != nil {
			return
		}
		panicked := true
		mdone, mcode, merr := func() (bool, int, error) {
			defer func() { recover() }()
			d, c, e := mz.ParseSlurpOutputErrResponse(doc, &b, &berr)
			panicked = false
			return d, c, e
		}()
		if panicked || merr != nil {
			return
		}
		if done != mdone || code != mcode || a.String() != b.String() || aerr.String() != berr.String() {
			t.Fatalf("parsers disagree on %q: ours %v %d %q %q, masterzen %v %d %q %q", doc, done, code, a.String(), aerr.String(), mdone, mcode, b.String(), berr.String())
		}
	})
}

const createResponse = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse</a:Action></s:Header><s:Body><x:ResourceCreated xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"><a:Address>http://host:5985/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">0A1B-22</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>0A1B-22</rsp:ShellId></rsp:Shell></s:Body></s:Envelope>`

const commandResponse = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:CommandResponse><rsp:CommandId> 9F-3 </rsp:CommandId></rsp:CommandResponse></s:Body></s:Envelope>`

func TestParseIDs(t *testing.T) {
	if id, err := parseShellID([]byte(createResponse)); err != nil || id != "0A1B-22" {
		t.Errorf("shell id %q %v", id, err)
	}
	if id, err := parseCommandID([]byte(commandResponse)); err != nil || id != "9F-3" {
		t.Errorf("command id %q %v", id, err)
	}
	// The ShellId element alone is not the selector masterzen reads.
	if id, err := parseShellID([]byte(commandResponse)); err != nil || id != "" {
		t.Errorf("shell id of a Command response: %q %v", id, err)
	}
	if _, err := parseCommandID([]byte(`<a><b>`)); err == nil {
		t.Error("a cut document was accepted")
	}
}

// FuzzParseIDs checks the ShellId and CommandId parsers against
// masterzen/winrm's XPath ones on every document both read.
func FuzzParseIDs(f *testing.F) {
	f.Add(createResponse)
	f.Add(commandResponse)
	f.Fuzz(func(t *testing.T, doc string) {
		for _, p := range []struct {
			ours   func([]byte) (string, error)
			theirs func(string) (string, error)
		}{{parseShellID, mz.ParseOpenShellResponse}, {parseCommandID, mz.ParseExecuteCommandResponse}} {
			id, err := p.ours([]byte(doc))
			if err != nil {
				continue
			}
			panicked := true
			mid, merr := func() (string, error) {
				defer func() { recover() }()
				id, err := p.theirs(doc)
				panicked = false
				return id, err
			}()
			if panicked || merr != nil {
				continue
			}
			if id != strings.TrimSpace(mid) {
				t.Fatalf("parsers disagree on %q: ours %q, masterzen %q", doc, id, mid)
			}
		}
	})
}
