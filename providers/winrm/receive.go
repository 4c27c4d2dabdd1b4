package winrm

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	shellNS   = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	stateDone = shellNS + "/CommandState/Done"
	wsmanNS   = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
)

// parseShellID reads the ShellId selector of a Create response, and
// parseCommandID the CommandId of a Command response: the same answers
// masterzen/winrm's XPath parsers give, for a fraction of their cost,
// which a fleet-wide plan pays once per host.
func parseShellID(body []byte) (string, error) {
	return firstText(body, func(t xml.StartElement) bool {
		return t.Name.Space == wsmanNS && t.Name.Local == "Selector" && attr(t, "Name") == "ShellId"
	})
}

func parseCommandID(body []byte) (string, error) {
	return firstText(body, func(t xml.StartElement) bool {
		return t.Name.Space == shellNS && t.Name.Local == "CommandId"
	})
}

// firstText is the text of the first element match accepts, or "" when
// none does.
func firstText(body []byte, match func(xml.StartElement) bool) (found string, err error) {
	depth := 0 // inside the matched element, its depth
	var text []byte
	err = walkXML(body, func(tok xml.Token) bool {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth > 0 || match(t) {
				depth++
			}
		case xml.CharData:
			if depth > 0 {
				text = append(text, t...)
			}
		case xml.EndElement:
			if depth > 0 {
				if depth--; depth == 0 {
					found = strings.TrimSpace(string(text))
					return false
				}
			}
		}
		return true
	})
	return found, err
}

// walkXML hands each token of the document to visit until visit says
// stop or the document ends, and refuses an element that names an
// attribute twice, which XML does not allow.
func walkXML(body []byte, visit func(xml.Token) (more bool)) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if t, ok := tok.(xml.StartElement); ok && dupAttr(t) {
			return fmt.Errorf("element %s repeats an attribute", t.Name.Local)
		}
		if !visit(tok) {
			return nil
		}
	}
}

// parseReceive reads a WinRS Receive response: it writes each stdout and
// stderr stream's decoded bytes, in document order, to stdout and stderr,
// and reports whether the command is done and with which exit code. It
// streams through the document once, keeping nothing but the text of the
// element it is in: what a fleet-wide plan costs per host is mostly these
// responses.
func parseReceive(body []byte, stdout, stderr io.Writer) (done bool, code int, err error) {
	var (
		stream   io.Writer // the Stream element being read, if any
		inExit   bool
		text     []byte
		exitCode string
		failed   error
	)
	err = walkXML(body, func(tok xml.Token) bool {
		switch t := tok.(type) {
		case xml.StartElement:
			text = text[:0]
			// The state may stand on any element, as masterzen/winrm
			// reads it.
			done = done || attr(t, "State") == stateDone
			if t.Name.Space != shellNS {
				break
			}
			switch t.Name.Local {
			case "Stream":
				switch attr(t, "Name") {
				case "stdout":
					stream = stdout
				case "stderr":
					stream = stderr
				}
			case "ExitCode":
				inExit = true
			}
		case xml.CharData:
			if stream != nil || inExit {
				text = append(text, t...)
			}
		case xml.EndElement:
			switch {
			case stream != nil && t.Name.Local == "Stream":
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
				if err != nil {
					failed = fmt.Errorf("a stream's content is not base64: %w", err)
					return false
				}
				if _, err := stream.Write(b); err != nil {
					failed = err
					return false
				}
				stream = nil
			case inExit && t.Name.Local == "ExitCode":
				exitCode, inExit = strings.TrimSpace(string(text)), false
			}
		}
		return true
	})
	if err = errors.Join(err, failed); err != nil {
		return false, 0, err
	}
	if done && exitCode != "" {
		if code, err = strconv.Atoi(exitCode); err != nil {
			return false, 0, fmt.Errorf("exit code %q is not a number", exitCode)
		}
	}
	return done, code, nil
}

// dupAttr reports an attribute named twice, which XML does not allow.
func dupAttr(t xml.StartElement) bool {
	for i := range t.Attr {
		for j := i + 1; j < len(t.Attr); j++ {
			if t.Attr[i].Name == t.Attr[j].Name {
				return true
			}
		}
	}
	return false
}

// attr is the value of the start element's attribute local (any
// namespace), or "".
func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
