package winrs_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bodgit/ntlmssp"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
)

// sealedConn is one raw connection to the server with an NTLM context
// that seals, for sending the server what no well-behaved client would.
type sealedConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	ntlm *ntlmssp.Client
}

func (c *sealedConn) do(authorization, contentType string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	_ = c.conn.SetDeadline(time.Now().Add(hangGuard))
	head := fmt.Sprintf("POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", len(body))
	if contentType != "" {
		head += "Content-Type: " + contentType + "\r\n"
	}
	if authorization != "" {
		head += "Authorization: " + authorization + "\r\n"
	}
	if _, err := c.conn.Write(append([]byte(head+"\r\n"), body...)); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func dialSealed(t *testing.T, addr string) *sealedConn {
	t.Helper()
	c := dialRaw(t, addr)
	client := c.ntlm
	neg, _ := client.Authenticate(nil, nil)
	resp, _ := c.do("Negotiate "+base64.StdEncoding.EncodeToString(neg), "", nil)
	_, token, _ := strings.Cut(resp.Header.Get("WWW-Authenticate"), " ")
	challenge, err := base64.StdEncoding.DecodeString(token)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("no challenge: %d %q", resp.StatusCode, resp.Header)
	}
	auth, err := client.Authenticate(challenge, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := c.do("Negotiate "+base64.StdEncoding.EncodeToString(auth), "", nil); resp.StatusCode != 200 {
		t.Fatalf("the empty message completing the handshake got %d", resp.StatusCode)
	}
	return c
}

func (c *sealedConn) seal(msg string) []byte {
	c.t.Helper()
	body, err := sealed.Frame([]byte(msg), sealed.SignatureSize, func(b []byte) ([]byte, error) {
		out, sig, err := c.ntlm.SecuritySession().Wrap(b)
		copy(b, out)
		return sig, err
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return body
}

// The server takes sealed messages in order and answers sealed; a
// replayed, tampered or clear message on the sealing connection is
// refused, and one that does not verify ends the connection, whose RC4
// streams are out of step.
func TestSealedMessagesRefusedWhenWrong(t *testing.T) {
	ts := startServerWith(t, echoRunner{}, nil, stock)
	create := envelope(wsmanCreate, "", createBody)

	c := dialSealed(t, ts.httpAddr)
	first := c.seal(create)
	resp, body := c.do("", sealed.ContentType, first)
	if resp.StatusCode != 200 || !sealed.IsEncrypted(resp.Header.Get("Content-Type")) {
		t.Fatalf("a sealed Create: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	sig, msg, err := sealed.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.ntlm.SecuritySession().Unwrap(msg, sig)
	if err != nil || !strings.Contains(string(plain), "ShellId") {
		t.Fatalf("the answer does not unseal to a Create response: %v %q", err, plain)
	}
	// Clear SOAP on the same connection: refused as unencrypted.
	if resp, _ := c.do("", soap, []byte(create)); resp.StatusCode != 401 {
		t.Errorf("clear SOAP on a sealing connection: %d", resp.StatusCode)
	}
	// The first message again: its sequence number is spent.
	if resp, _ := c.do("", sealed.ContentType, first); resp.StatusCode != 400 || !resp.Close {
		t.Errorf("a replayed message: %d, close %v", resp.StatusCode, resp.Close)
	}

	c = dialSealed(t, ts.httpAddr)
	tampered := c.seal(create)
	tampered[len(tampered)-40] ^= 1
	if resp, _ := c.do("", sealed.ContentType, tampered); resp.StatusCode != 400 || !resp.Close {
		t.Errorf("a tampered message: %d, close %v", resp.StatusCode, resp.Close)
	}
	if n := ts.count("400", "does not verify"); n != 2 {
		t.Errorf("the server logged %d refusals of messages that do not verify, want 2", n)
	}

	// A sealed message on a connection that never authenticated.
	conn, err := net.Dial("tcp", ts.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := &sealedConn{t: t, conn: conn, br: bufio.NewReader(conn)}
	if resp, _ := raw.do("", sealed.ContentType, first); resp.StatusCode != 401 {
		t.Errorf("a sealed message without a context: %d", resp.StatusCode)
	}
}
