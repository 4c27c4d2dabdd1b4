package sealed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// Protocol names NTLM (and Kerberos) session encryption in the
// Content-Type's protocol parameter.
const Protocol = "application/HTTP-SPNEGO-session-encrypted"

// ContentType is the Content-Type of an encrypted request or response.
const ContentType = `multipart/encrypted;protocol="` + Protocol + `";boundary="Encrypted Boundary"`

// SignatureSize is the length of an NTLM signature.
const SignatureSize = 16

// MaxSignatureSize bounds the signature a framed message may carry: a
// Kerberos wrap token's header (60 bytes for AES, 45 for RC4-HMAC, more
// with filler) is its signature.
const MaxSignatureSize = 256

const (
	boundary = "--Encrypted Boundary"
	headTmpl = boundary + "\r\n\tContent-Type: " + Protocol + "\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n" +
		boundary + "\r\n\tContent-Type: application/octet-stream\r\n"
	tail = boundary + "--\r\n"
)

// Overhead is how many bytes framing adds to a message of n bytes sealed
// with a signature of sigSize bytes: what a client must leave free of
// the host's MaxEnvelopeSize.
func Overhead(n, sigSize int) int {
	return len(fmt.Sprintf(headTmpl, n)) + 4 + sigSize + len(tail)
}

// Frame returns the encrypted body carrying msg. seal encrypts its
// argument in place (a copy of msg inside the body) and returns the
// signature, sigSize bytes long; msg itself is not changed.
func Frame(msg []byte, sigSize int, seal func([]byte) ([]byte, error)) ([]byte, error) {
	if sigSize <= 0 || sigSize > MaxSignatureSize {
		return nil, fmt.Errorf("sealed: a %d-byte signature cannot be framed", sigSize)
	}
	head := fmt.Sprintf(headTmpl, len(msg))
	out := make([]byte, 0, len(head)+4+sigSize+len(msg)+len(tail))
	out = append(out, head...)
	out = binary.LittleEndian.AppendUint32(out, uint32(sigSize))
	sigAt := len(out)
	out = append(out, make([]byte, sigSize)...)
	at := len(out)
	out = append(out, msg...)
	sig, err := seal(out[at:])
	if err != nil {
		return nil, err
	}
	if len(sig) != sigSize {
		return nil, fmt.Errorf("sealed: a %d-byte signature where %d were announced", len(sig), sigSize)
	}
	copy(out[sigAt:], sig)
	return append(out, tail...), nil
}

// IsEncrypted reports whether a Content-Type announces a message
// encrypted with a session key.
func IsEncrypted(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "multipart/encrypted" && strings.EqualFold(params["protocol"], Protocol)
}

// ErrMalformed reports a body that is not one framed encrypted message.
var ErrMalformed = errors.New("sealed: malformed encrypted message")

// Parse returns the signature and the sealed bytes of an encrypted body.
// Both alias body. The header lines may be indented or not, as senders
// differ; everything after them is taken by length.
func Parse(body []byte) (signature, sealedMsg []byte, err error) {
	rest, ok := line(body, boundary)
	if !ok {
		return nil, nil, fmt.Errorf("%w: no opening boundary", ErrMalformed)
	}
	length := -1
	for {
		var l []byte
		l, rest, ok = nextLine(rest)
		if !ok {
			return nil, nil, fmt.Errorf("%w: the headers do not end", ErrMalformed)
		}
		t := strings.TrimSpace(string(l))
		name, value, _ := strings.Cut(t, ":")
		switch {
		case t == boundary:
			continue
		case strings.EqualFold(name, "OriginalContent"):
			for _, p := range strings.Split(value, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "Length") {
					if length, err = strconv.Atoi(v); err != nil || length < 0 {
						return nil, nil, fmt.Errorf("%w: Length %q", ErrMalformed, v)
					}
				}
			}
		case strings.EqualFold(name, "Content-Type") && strings.EqualFold(strings.TrimSpace(value), "application/octet-stream"):
			if length < 0 {
				return nil, nil, fmt.Errorf("%w: no OriginalContent length", ErrMalformed)
			}
			return payload(rest, length)
		}
	}
}

func payload(rest []byte, length int) ([]byte, []byte, error) {
	if len(rest) < 4 {
		return nil, nil, fmt.Errorf("%w: cut short", ErrMalformed)
	}
	n := int(binary.LittleEndian.Uint32(rest))
	if n <= 0 || n > MaxSignatureSize {
		return nil, nil, fmt.Errorf("%w: a %d-byte signature", ErrMalformed, n)
	}
	rest = rest[4:]
	if len(rest) < n+length {
		return nil, nil, fmt.Errorf("%w: cut short", ErrMalformed)
	}
	sig, msg, after := rest[:n], rest[n:n+length], rest[n+length:]
	if bytes.HasPrefix(bytes.TrimPrefix(after, []byte("\r\n")), []byte(boundary+"--")) {
		return sig, msg, nil
	}
	// A Kerberos wrap token may carry more than the message (RC4-HMAC's
	// padding follows it): the payload then runs to the closing boundary
	// that ends the body.
	end := bytes.TrimSuffix(rest[n:], []byte("\r\n"))
	if !bytes.HasSuffix(end, []byte(boundary+"--")) {
		return nil, nil, fmt.Errorf("%w: no closing boundary after the message", ErrMalformed)
	}
	end = end[:len(end)-len(boundary+"--")]
	if len(end) < length {
		return nil, nil, fmt.Errorf("%w: cut short", ErrMalformed)
	}
	return sig, end, nil
}

// line checks that b starts with the line want and returns what follows.
func line(b []byte, want string) ([]byte, bool) {
	l, rest, ok := nextLine(b)
	return rest, ok && strings.TrimSpace(string(l)) == want
}

func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:], true
}
