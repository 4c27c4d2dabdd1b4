package sealed

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

// xorSeal stands in for NTLM: it changes every byte and signs with a
// recognisable signature.
func xorSeal(b []byte) ([]byte, error) {
	for i := range b {
		b[i] ^= 0x5a
	}
	return bytes.Repeat([]byte{0xee}, SignatureSize), nil
}

// The layout is [MS-WSMV] 2.2.9.1.1's, byte for byte as pywinrm and
// Windows write it.
func TestFrameLayout(t *testing.T) {
	msg := []byte("<s:Envelope/>")
	body, err := Frame(msg, SignatureSize, xorSeal)
	if err != nil {
		t.Fatal(err)
	}
	sealedMsg := append([]byte(nil), msg...)
	_, _ = xorSeal(sealedMsg)
	var want bytes.Buffer
	want.WriteString("--Encrypted Boundary\r\n")
	want.WriteString("\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n")
	want.WriteString("\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=13\r\n")
	want.WriteString("--Encrypted Boundary\r\n")
	want.WriteString("\tContent-Type: application/octet-stream\r\n")
	want.Write([]byte{16, 0, 0, 0})
	want.Write(bytes.Repeat([]byte{0xee}, 16))
	want.Write(sealedMsg)
	want.WriteString("--Encrypted Boundary--\r\n")
	if !bytes.Equal(body, want.Bytes()) {
		t.Errorf("body\n%q\nwant\n%q", body, want.Bytes())
	}
	if string(msg) != "<s:Envelope/>" {
		t.Error("Frame changed its argument")
	}
	if got := Overhead(len(msg), SignatureSize); got != len(body)-len(msg) {
		t.Errorf("Overhead = %d, framing took %d", got, len(body)-len(msg))
	}
	sig, got, err := Parse(body)
	if err != nil || !bytes.Equal(got, sealedMsg) || !bytes.Equal(sig, bytes.Repeat([]byte{0xee}, 16)) {
		t.Errorf("Parse = %x, %q, %v", sig, got, err)
	}
}

// Ciphertext is binary: boundaries, line ends and header-like text
// inside it must not confuse the parser.
func TestParseTakesThePayloadByLength(t *testing.T) {
	msg := []byte("\r\n--Encrypted Boundary--\r\n\tContent-Type: x\r\n\r\n\n")
	body, err := Frame(msg, SignatureSize, func(b []byte) ([]byte, error) { return make([]byte, 16), nil })
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := Parse(body)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Parse = %q, %v", got, err)
	}
	// Unindented headers and a line break before the closing boundary.
	plain := "--Encrypted Boundary\r\nContent-Type: " + Protocol + "\r\nOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" +
		strconv.Itoa(len(msg)) + "\r\n--Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n" +
		"\x10\x00\x00\x00" + string(make([]byte, 16)) + string(msg) + "\r\n--Encrypted Boundary--\r\n"
	if _, got, err := Parse([]byte(plain)); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("variant: %q, %v", got, err)
	}
}

// A Kerberos wrap token's header is its signature, and RC4-HMAC's
// padding follows the message: the payload then runs to the closing
// boundary, and the unwrap checks the length.
func TestKerberosFraming(t *testing.T) {
	msg := []byte("<s:Envelope/>")
	header := bytes.Repeat([]byte{0xab}, 60)
	body, err := Frame(msg, len(header), func([]byte) ([]byte, error) { return header, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := Overhead(len(msg), len(header)); got != len(body)-len(msg) {
		t.Errorf("Overhead = %d, framing took %d", got, len(body)-len(msg))
	}
	sig, got, err := Parse(body)
	if err != nil || !bytes.Equal(sig, header) || !bytes.Equal(got, msg) {
		t.Fatalf("Parse = %x, %q, %v", sig, got, err)
	}
	padded := bytes.Replace(body, []byte("<s:Envelope/>"), []byte("<s:Envelope/>\x01"), 1)
	if _, got, err := Parse(padded); err != nil || string(got) != "<s:Envelope/>\x01" {
		t.Errorf("padded payload: %q, %v", got, err)
	}
	if _, err := Frame(msg, 60, func([]byte) ([]byte, error) { return header[:45], nil }); err == nil {
		t.Error("a signature of another size than announced was framed")
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	good, _ := Frame([]byte("hello"), SignatureSize, xorSeal)
	cases := map[string][]byte{
		"empty":           nil,
		"soap":            []byte("<s:Envelope/>"),
		"cut":             good[:len(good)-30],
		"no tail":         good[:len(good)-len(tail)],
		"long length":     bytes.Replace(good, []byte("Length=5"), []byte("Length=50"), 1),
		"negative length": bytes.Replace(good, []byte("Length=5"), []byte("Length=-5"), 1),
		"no length":       bytes.Replace(good, []byte("Length=5"), []byte("Size=5"), 1),
		"signature size":  bytes.Replace(good, []byte{16, 0, 0, 0}, []byte{0, 1, 0, 0}, 1),
		"no signature":    bytes.Replace(good, []byte{16, 0, 0, 0}, []byte{0, 0, 0, 0}, 1),
	}
	for name, body := range cases {
		if _, _, err := Parse(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestIsEncrypted(t *testing.T) {
	for ct, want := range map[string]bool{
		ContentType: true,
		`Multipart/Encrypted; protocol="application/http-spnego-session-encrypted"; boundary="Encrypted Boundary"`: true,
		`multipart/encrypted;protocol="application/HTTP-CredSSP-session-encrypted"`:                                false,
		"application/soap+xml;charset=UTF-8":                                                                       false,
		"":                                                                                                         false,
	} {
		if got := IsEncrypted(ct); got != want {
			t.Errorf("IsEncrypted(%q) = %v", ct, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Frame([]byte("<s:Envelope>hello</s:Envelope>"), SignatureSize, xorSeal)
	f.Add(good)
	f.Add([]byte("--Encrypted Boundary\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		sig, msg, err := Parse(body)
		if err != nil {
			return
		}
		if len(sig) == 0 || len(sig) > MaxSignatureSize {
			t.Fatalf("signature of %d bytes", len(sig))
		}
		// What parses frames again to the same payload.
		again, err := Frame(msg, len(sig), func(b []byte) ([]byte, error) { return sig, nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, msg2, err := Parse(again); err != nil || !bytes.Equal(msg, msg2) {
			t.Fatalf("reframed: %q vs %q, %v", msg, msg2, err)
		}
	})
}
