package wsman

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"strings"
)

// Actions of the WinRS shell resource and of WS-Transfer.
const (
	ActionCreate   = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	ActionDelete   = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	ActionCommand  = NSShell + "/Command"
	ActionSend     = NSShell + "/Send"
	ActionReceive  = NSShell + "/Receive"
	ActionSignal   = NSShell + "/Signal"
	ActionFault    = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
	ResourceCmd    = NSShell + "/cmd"
	StateDone      = NSShell + "/CommandState/Done"
	StateRunning   = NSShell + "/CommandState/Running"
	SignalTerm     = NSShell + "/signal/terminate"
	SignalCtrlC    = NSShell + "/signal/ctrl_c"
	SignalCtrlBrk  = NSShell + "/signal/ctrl_break"
	ResponseSuffix = "Response"
)

// NewUUID returns a random (version 4) UUID in the uuid:... form WS-Man
// uses for message ids, and the bare form for shell and command ids.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Escape returns s escaped for XML text and attribute values.
func Escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

const envelopeOpen = `<s:Envelope xml:lang="en-US"` +
	` xmlns:s="` + NSSoap + `"` +
	` xmlns:a="` + NSAddressing + `"` +
	` xmlns:x="` + NSTransfer + `"` +
	` xmlns:w="` + NSWSMan + `"` +
	` xmlns:rsp="` + NSShell + `"` +
	` xmlns:p="` + NSMSWSMan + `">`

// Response renders a response envelope. body is already-rendered XML
// using the prefixes declared on the envelope (s, a, x, w, rsp, p).
func Response(action, relatesTo, body string) []byte {
	var b strings.Builder
	b.Grow(len(body) + 1024)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(envelopeOpen)
	b.WriteString(`<s:Header><a:Action>`)
	b.WriteString(Escape(action))
	b.WriteString(`</a:Action><a:MessageID>uuid:`)
	b.WriteString(NewUUID())
	b.WriteString(`</a:MessageID><a:To>` + AnonymousAddress + `</a:To>`)
	if relatesTo != "" {
		b.WriteString(`<a:RelatesTo>`)
		b.WriteString(Escape(relatesTo))
		b.WriteString(`</a:RelatesTo>`)
	}
	b.WriteString(`</s:Header><s:Body>`)
	b.WriteString(body)
	b.WriteString(`</s:Body></s:Envelope>`)
	return []byte(b.String())
}

// Overhead is a generous bound on what Response adds around a body, used
// to keep responses within the client's MaxEnvelopeSize.
const Overhead = 2048

// Render renders f as a complete fault envelope. machine names the host
// in the WSManFault detail, as Windows does.
func (f *Fault) Render(relatesTo, machine string) []byte {
	var b strings.Builder
	b.WriteString(`<s:Fault><s:Code><s:Value>`)
	b.WriteString(f.Code)
	b.WriteString(`</s:Value>`)
	if f.Subcode != "" {
		b.WriteString(`<s:Subcode><s:Value>`)
		b.WriteString(f.Subcode)
		b.WriteString(`</s:Value></s:Subcode>`)
	}
	b.WriteString(`</s:Code><s:Reason><s:Text xml:lang="en-US">`)
	b.WriteString(Escape(f.Reason))
	b.WriteString(`</s:Text></s:Reason><s:Detail>`)
	if f.Detail != "" {
		b.WriteString(`<w:FaultDetail>`)
		b.WriteString(Escape(f.Detail))
		b.WriteString(`</w:FaultDetail>`)
	}
	fmt.Fprintf(&b, `<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>%s</f:Message></f:WSManFault>`,
		NSWSManFault, f.WSManCode, Escape(machine), Escape(f.Reason))
	b.WriteString(`</s:Detail></s:Fault>`)
	return Response(ActionFault, relatesTo, b.String())
}
