package winrm

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Fault is a WS-Management fault as the host sent it.
type Fault struct {
	Code    string // s:Sender or s:Receiver
	Subcode string // e.g. w:TimedOut
	Reason  string
	// WSManCode is the Windows error code (WSManFault/@Code), 0 if none.
	WSManCode uint32
	// Message is the WSManFault's own text, often more specific than
	// Reason.
	Message string
}

func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("WS-Management fault")
	if f.Subcode != "" {
		b.WriteString(" " + f.Subcode)
	}
	if f.WSManCode != 0 {
		fmt.Fprintf(&b, " (code %d)", f.WSManCode)
	}
	b.WriteString(": ")
	text := f.Reason
	if f.Message != "" && !strings.Contains(f.Reason, f.Message) {
		if text != "" {
			text += " "
		}
		text += f.Message
	}
	if text == "" {
		text = "no reason given"
	}
	b.WriteString(text)
	return b.String()
}

// Windows error codes the transport acts on.
const (
	codeOperationTimedOut = 0x80338029
	codeEncodingLimit     = 0x80338035
	// codeAccessDenied is E_ACCESSDENIED: the shell refused an account
	// that is not an administrator.
	codeAccessDenied = 0x80070005
)

func (f *Fault) timedOut() bool {
	return f.WSManCode == codeOperationTimedOut || strings.HasSuffix(f.Subcode, ":TimedOut")
}

func (f *Fault) envelopeTooLarge() bool {
	return f.WSManCode == codeEncodingLimit || strings.HasSuffix(f.Subcode, ":EncodingLimit")
}

// faultXML matches by local names: hosts differ in prefixes, and the
// WSManFault detail sits in its own namespace.
type faultXML struct {
	Body struct {
		Fault *struct {
			Code struct {
				Value   string `xml:"Value"`
				Subcode struct {
					Value string `xml:"Value"`
				} `xml:"Subcode"`
			} `xml:"Code"`
			Reason struct {
				Text []string `xml:"Text"`
			} `xml:"Reason"`
			Detail struct {
				WSManFault struct {
					Code    string `xml:"Code,attr"`
					Message struct {
						Inner string `xml:",innerxml"`
					} `xml:"Message"`
				} `xml:"WSManFault"`
			} `xml:"Detail"`
		} `xml:"Fault"`
	} `xml:"Body"`
}

// parseFault returns the fault in body, or nil if there is none.
func parseFault(body []byte) *Fault {
	var env faultXML
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Fault == nil {
		return nil
	}
	f := env.Body.Fault
	out := &Fault{
		Code:    strings.TrimSpace(f.Code.Value),
		Subcode: strings.TrimSpace(f.Code.Subcode.Value),
		Reason:  strings.TrimSpace(strings.Join(f.Reason.Text, " ")),
		Message: strings.TrimSpace(stripTags(f.Detail.WSManFault.Message.Inner)),
	}
	var code uint64
	if _, err := fmt.Sscan(f.Detail.WSManFault.Code, &code); err == nil {
		out.WSManCode = uint32(code)
	}
	return out
}

// stripTags keeps the text of a WSManFault message, whose provider
// faults nest XML elements.
func stripTags(inner string) string {
	d := xml.NewDecoder(strings.NewReader("<m>" + inner + "</m>"))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			b.Write(cd)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
