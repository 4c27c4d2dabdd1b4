package wsman

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Namespaces used on the wire. Windows binds them to these prefixes in its
// responses; clients match on the URIs, but some (masterzen/winrm's XPath
// queries) also on the prefixes, so the encoder keeps them.
const (
	NSSoap       = "http://www.w3.org/2003/05/soap-envelope"
	NSAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	NSTransfer   = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	NSWSMan      = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	NSMSWSMan    = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	NSShell      = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	NSWSManFault = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

	AnonymousAddress = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

// Limits of the decoder. A WinRS request is a handful of headers and one
// small body element (a Send carries one long text node), so these are far
// above anything a real client sends and far below what hurts the server.
const (
	maxDepth    = 32
	maxElements = 4096
	maxAttrs    = 64
)

// Element is a decoded XML element: enough of a DOM for WS-Man bodies.
type Element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*Element
	Text     string
}

// Child returns the first child with the given namespace and local name.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name.Space == space && c.Name.Local == local {
			return c
		}
	}
	return nil
}

// All returns every child with the given namespace and local name.
func (e *Element) All(space, local string) []*Element {
	if e == nil {
		return nil
	}
	var out []*Element
	for _, c := range e.Children {
		if c.Name.Space == space && c.Name.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// AttrValue returns the value of the attribute with the local name, in no
// namespace (WS-Man attributes such as Name, CommandId and End are
// unqualified).
func (e *Element) AttrValue(local string) (string, bool) {
	if e == nil {
		return "", false
	}
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == e.Name.Space) {
			return a.Value, true
		}
	}
	return "", false
}

// TextOf returns the trimmed text of e, or "" for a nil element.
func (e *Element) TextOf() string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text)
}

// Envelope is a decoded request: the headers a WinRS server acts on and
// the first element of the body.
type Envelope struct {
	Action      string
	MessageID   string
	To          string
	ReplyTo     string
	ResourceURI string
	Locale      string
	// MaxEnvelopeSize is the largest response the client accepts, in
	// bytes; 0 when the header is absent.
	MaxEnvelopeSize int
	// OperationTimeout is 0 when the header is absent.
	OperationTimeout time.Duration
	Selectors        map[string]string
	Options          map[string]string
	// Body is the first element inside s:Body, nil for an empty body.
	Body *Element
}

// Decode parses one SOAP 1.2 envelope. Errors are *Fault values that can
// be sent back as they are.
func Decode(data []byte) (*Envelope, error) {
	root, err := parse(data)
	if err != nil {
		return nil, InvalidXML(err.Error())
	}
	if root.Name.Local != "Envelope" {
		return nil, InvalidXML("the root element is not a SOAP envelope")
	}
	if root.Name.Space != NSSoap {
		return nil, SoapVersionMismatch()
	}
	env := &Envelope{Selectors: map[string]string{}, Options: map[string]string{}}
	header := root.Child(NSSoap, "Header")
	body := root.Child(NSSoap, "Body")
	if header == nil {
		return nil, MissingHeader("s:Header")
	}
	if body == nil {
		return nil, InvalidBody()
	}
	if len(body.Children) > 0 {
		env.Body = body.Children[0]
	}
	env.Action = header.Child(NSAddressing, "Action").TextOf()
	env.MessageID = header.Child(NSAddressing, "MessageID").TextOf()
	env.To = header.Child(NSAddressing, "To").TextOf()
	env.ReplyTo = header.Child(NSAddressing, "ReplyTo").Child(NSAddressing, "Address").TextOf()
	env.ResourceURI = header.Child(NSWSMan, "ResourceURI").TextOf()
	if l := header.Child(NSWSMan, "Locale"); l != nil {
		for _, a := range l.Attr {
			if a.Name.Local == "lang" { // xml:lang
				env.Locale = a.Value
			}
		}
	}
	for _, s := range header.Child(NSWSMan, "SelectorSet").All(NSWSMan, "Selector") {
		name, _ := s.AttrValue("Name")
		env.Selectors[name] = s.TextOf()
	}
	for _, o := range header.Child(NSWSMan, "OptionSet").All(NSWSMan, "Option") {
		name, _ := o.AttrValue("Name")
		env.Options[name] = o.TextOf()
	}
	if env.Action == "" {
		return nil, MissingHeader("a:Action")
	}
	if env.MessageID == "" {
		return nil, MissingHeader("a:MessageID")
	}
	if m := header.Child(NSWSMan, "MaxEnvelopeSize"); m != nil {
		n, err := strconv.Atoi(m.TextOf())
		if err != nil || n <= 0 {
			return nil, InvalidHeader("w:MaxEnvelopeSize is not a positive integer")
		}
		env.MaxEnvelopeSize = n
	}
	if t := header.Child(NSWSMan, "OperationTimeout"); t != nil {
		d, err := ParseDuration(t.TextOf())
		if err != nil {
			return nil, InvalidHeader("w:OperationTimeout: " + err.Error())
		}
		env.OperationTimeout = d
	}
	return env, nil
}

// bigRun is the shortest text run taken out of the XML before parsing.
const bigRun = 4096

// liftRuns cuts long runs of base64 text (the payload of a Send, which is
// nearly all of a large request) out of the document before it goes
// through encoding/xml, which handles text a byte at a time and would be
// the upload bottleneck; each run is replaced by a marker and put back
// afterwards. Base64 has no '<' or '&', so the cut never changes how the
// rest parses.
func liftRuns(data []byte) ([]byte, []string, string) {
	var (
		out   []byte
		runs  []string
		nonce string
		last  int
	)
	for i := 0; i < len(data); i++ {
		if data[i] != '>' {
			continue
		}
		j := i + 1
		for j < len(data) && isBase64(data[j]) {
			j++
		}
		if j-(i+1) < bigRun || j >= len(data) || data[j] != '<' {
			i = j - 1
			continue
		}
		if nonce == "" {
			nonce = "gsd-run-" + NewUUID() + "-"
			out = make([]byte, 0, len(data)/8+256)
		}
		out = append(out, data[last:i+1]...)
		out = append(out, nonce+strconv.Itoa(len(runs))+"."...)
		run := string(data[i+1 : j])
		if strings.IndexByte(run, '\r') >= 0 {
			// What the XML parser would have done: line ends become \n.
			run = strings.ReplaceAll(strings.ReplaceAll(run, "\r\n", "\n"), "\r", "\n")
		}
		runs = append(runs, run)
		last = j
		i = j - 1
	}
	if nonce == "" {
		return data, nil, ""
	}
	return append(out, data[last:]...), runs, nonce
}

// base64Run holds the bytes a lifted run may contain: base64 and the
// white space a client may wrap it with. A table, since this scan touches
// every byte of every upload.
var base64Run = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n \t") {
		t[c] = true
	}
	return t
}()

func isBase64(c byte) bool { return base64Run[c] }

func restoreRuns(e *Element, runs []string, nonce string) {
	if strings.Contains(e.Text, nonce) {
		pairs := make([]string, 0, 2*len(runs))
		for i, r := range runs {
			pairs = append(pairs, nonce+strconv.Itoa(i)+".", r)
		}
		e.Text = strings.NewReplacer(pairs...).Replace(e.Text)
	}
	for _, c := range e.Children {
		restoreRuns(c, runs, nonce)
	}
}

func parse(data []byte) (*Element, error) {
	data, runs, nonce := liftRuns(data)
	root, err := parseTree(data)
	if err != nil || len(runs) == 0 {
		return root, err
	}
	restoreRuns(root, runs, nonce)
	return root, nil
}

func parseTree(data []byte) (*Element, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// No entity map and no charset reader: only the five predefined
	// entities and UTF-8 are accepted, which is what shuts out entity
	// expansion and encoding tricks.
	var (
		stack []*Element
		// texts[i] collects stack[i]'s text: appending to a string would
		// copy all of it again for each piece, quadratic in a text cut
		// into many pieces by comments.
		texts    []*strings.Builder
		root     *Element
		elements int
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elements++
			if elements > maxElements {
				return nil, fmt.Errorf("more than %d elements", maxElements)
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("nested deeper than %d elements", maxDepth)
			}
			if len(t.Attr) > maxAttrs {
				return nil, fmt.Errorf("more than %d attributes on one element", maxAttrs)
			}
			el := &Element{Name: t.Name, Attr: t.Copy().Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = el
			} else {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, el)
			}
			stack = append(stack, el)
			texts = append(texts, &strings.Builder{})
		case xml.EndElement:
			stack[len(stack)-1].Text = texts[len(texts)-1].String()
			stack, texts = stack[:len(stack)-1], texts[:len(texts)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, errors.New("text outside the root element")
				}
				continue
			}
			texts[len(texts)-1].Write(t)
		case xml.Directive:
			return nil, errors.New("DTDs and other directives are not accepted")
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, fmt.Errorf("processing instruction %q is not accepted", t.Target)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// ParseDuration reads the xs:duration forms WS-Man clients send for
// OperationTimeout: PT60S, PT60.000S, PT1M30S, P0DT0H1M0S. Years and
// months are refused because their length is not fixed.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if !strings.HasPrefix(s, "P") {
		return 0, fmt.Errorf("%q is not an xs:duration", orig)
	}
	s = s[1:]
	var total float64
	inTime := false
	seen := false
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return 0, fmt.Errorf("%q is not an xs:duration", orig)
			}
			inTime = true
			s = s[1:]
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 || i == len(s) {
			return 0, fmt.Errorf("%q is not an xs:duration", orig)
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an xs:duration", orig)
		}
		unit := s[i]
		s = s[i+1:]
		seen = true
		switch {
		case !inTime && unit == 'D':
			total += n * 86400
		case inTime && unit == 'H':
			total += n * 3600
		case inTime && unit == 'M':
			total += n * 60
		case inTime && unit == 'S':
			total += n
		default:
			return 0, fmt.Errorf("%q: unit %q is not supported", orig, unit)
		}
	}
	if !seen {
		return 0, fmt.Errorf("%q is not an xs:duration", orig)
	}
	const maxSeconds = 1 << 31
	if total > maxSeconds {
		return 0, fmt.Errorf("%q is too long", orig)
	}
	return time.Duration(total * float64(time.Second)), nil
}
