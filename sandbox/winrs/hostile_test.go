package winrs_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

// echoRunner stands in for Wine where only the protocol is under test: a
// command prints its own command line and exits 0.
type echoRunner struct{}

type echoProcess struct {
	stdin io.WriteCloser
	done  chan struct{}
}

func (echoRunner) Start(c winecmd.Command) (winecmd.Process, error) {
	if strings.HasPrefix(strings.ToLower(c.Line), "powershell") {
		// The real runner's decision, without Wine.
		return (&winecmd.Host{}).Start(c)
	}
	r, w := io.Pipe()
	p := &echoProcess{stdin: w, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, _ = io.WriteString(c.Stdout, c.Line)
		r.Close()
	}()
	return p, nil
}

func (p *echoProcess) Stdin() io.WriteCloser { return p.stdin }
func (p *echoProcess) Wait() int             { <-p.done; return 0 }
func (p *echoProcess) Signal(winecmd.Signal) {}

func envelope(action, shellID, body string) string {
	sel := ""
	if shellID != "" {
		sel = `<w:SelectorSet><w:Selector Name="ShellId">` + shellID + `</w:Selector></w:SelectorSet>`
	}
	return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ` +
		`xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">` +
		`<s:Header><a:Action>` + action + `</a:Action><a:MessageID>uuid:0A0B0C0D-0000-0000-0000-000000000001</a:MessageID>` +
		`<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>` + sel +
		`<w:OperationTimeout>PT5S</w:OperationTimeout></s:Header><s:Body>` + body + `</s:Body></s:Envelope>`
}

const createBody = `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`

func post(t *testing.T, addr, contentType, body string, auth bool) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/wsman", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth {
		req.SetBasicAuth(testUser, testPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

const soap = "application/soap+xml;charset=UTF-8"

func TestHostileRequests(t *testing.T) {
	ts := startServer(t, echoRunner{}, nil)
	addr := ts.httpAddr
	bomb := `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">` +
		`<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>` +
		envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", "", "&d;")
	cases := []struct {
		name        string
		contentType string
		body        string
		auth        bool
		status      int
		want        string
	}{
		{"no auth", soap, envelope(wsmanCreate, "", createBody), false, 401, ""},
		{"malformed xml", soap, "<s:Envelope><unclosed>", true, 400, "w:SchemaValidationError"},
		{"entity expansion", soap, bomb, true, 400, "w:SchemaValidationError"},
		{"huge body", soap, strings.Repeat("A", 5<<20), true, 500, "w:EncodingLimit"},
		{"unknown action", soap, envelope("http://example.com/Explode", "", ""), true, 500, "a:ActionNotSupported"},
		{"unknown shell", soap, envelope(wsmanCommand, "DEADBEEF-0000-0000-0000-000000000000",
			`<rsp:CommandLine><rsp:Command>dir</rsp:Command></rsp:CommandLine>`), true, 500, "w:InvalidSelectors"},
		{"wrong content type", "text/plain", "hello", true, 415, ""},
		{"binary junk", soap, "\x00\x01\x02\xff\xfe", true, 400, "w:SchemaValidationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, hdr := post(t, addr, c.contentType, c.body, c.auth)
			if status != c.status {
				t.Errorf("status %d, want %d: %s", status, c.status, body)
			}
			if c.want != "" && !strings.Contains(body, c.want) {
				t.Errorf("response lacks %s: %s", c.want, body)
			}
			if status == 401 {
				if got := strings.Join(hdr.Values("WWW-Authenticate"), ", "); !strings.Contains(got, "Negotiate") || !strings.Contains(got, "Basic") {
					t.Errorf("WWW-Authenticate: %q", got)
				}
			}
		})
	}
	// Other methods and paths.
	if resp, err := http.Get("http://" + addr + "/wsman"); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET: %v %v", resp.StatusCode, err)
	}
	if resp, err := http.Post("http://"+addr+"/other", soap, nil); err != nil || resp.StatusCode != 404 {
		t.Errorf("other path: %v %v", resp.StatusCode, err)
	}
	// Still up and working.
	status, body, _ := post(t, addr, soap, envelope(wsmanCreate, "", createBody), true)
	if status != 200 || !strings.Contains(body, `Name="ShellId"`) {
		t.Fatalf("the server did not survive: %d %s", status, body)
	}
}

const (
	wsmanCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	wsmanCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
)

func createShell(t *testing.T, addr string) string {
	t.Helper()
	status, body, _ := post(t, addr, soap, envelope(wsmanCreate, "", createBody), true)
	if status != 200 {
		t.Fatalf("create: %d %s", status, body)
	}
	i := strings.Index(body, `Name="ShellId">`)
	return body[i+len(`Name="ShellId">`) : i+len(`Name="ShellId">`)+36]
}

func TestOtherPowerShellIsRefusedClearly(t *testing.T) {
	ts := startServer(t, echoRunner{}, nil)
	id := createShell(t, ts.httpAddr)
	status, body, _ := post(t, ts.httpAddr, soap, envelope(wsmanCommand, id,
		`<rsp:CommandLine><rsp:Command>powershell -Command Get-Service</rsp:Command></rsp:CommandLine>`), true)
	if status != 500 || !strings.Contains(body, "does not run PowerShell") {
		t.Errorf("%d %s", status, body)
	}
}

func TestFaultInjection(t *testing.T) {
	ts := startServer(t, echoRunner{}, nil)
	file := filepath.Join(t.TempDir(), "faults.json")
	ts.faults.SetFile(file)
	set := func(s winrs.FaultSettings) {
		t.Helper()
		if err := winrs.WriteFaultFile(file, s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond) // the file is polled
	}
	createOK := func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ts.httpAddr+"/wsman", strings.NewReader(envelope(wsmanCreate, "", createBody)))
		req.Header.Set("Content-Type", soap)
		req.SetBasicAuth(testUser, testPassword)
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == 200
	}
	if !createOK() {
		t.Fatal("no faults: request failed")
	}

	set(winrs.FaultSettings{Status500: true})
	if status, _, _ := post(t, ts.httpAddr, soap, envelope(wsmanCreate, "", createBody), true); status != 500 {
		t.Errorf("status_500: got %d", status)
	}

	set(winrs.FaultSettings{CutAfterBytes: 100})
	if createOK() {
		t.Error("cut_after_bytes: the request went through")
	}

	// drop closes a connection that was open before it was set.
	set(winrs.FaultSettings{})
	open, err := net.Dial("tcp", ts.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	set(winrs.FaultSettings{Drop: true})
	open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := open.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("drop: an open connection still reads (%d, %v)", n, err)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("drop: an open connection was left open")
	}
	if createOK() {
		t.Error("drop: a new connection's request went through")
	}

	set(winrs.FaultSettings{Refuse: true})
	time.Sleep(300 * time.Millisecond)
	if _, err := net.Dial("tcp", ts.httpAddr); err == nil {
		t.Error("refuse: a connection was accepted")
	} else if !strings.Contains(err.Error(), "refused") {
		t.Errorf("refuse: %v", err)
	}

	set(winrs.FaultSettings{DelayMS: 300})
	time.Sleep(300 * time.Millisecond) // listening again
	start := time.Now()
	if !createOK() {
		t.Error("delay: request failed")
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Error("delay_ms was not applied")
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	if !createOK() {
		t.Error("faults cleared: request failed")
	}
}

func TestReceiveHonoursEnvelopeSize(t *testing.T) {
	ts := startServer(t, echoRunner{}, nil)
	id := createShell(t, ts.httpAddr)
	long := strings.Repeat("x", 300_000)
	status, body, _ := post(t, ts.httpAddr, soap, envelope(wsmanCommand, id,
		`<rsp:CommandLine CommandId="11111111-1111-1111-1111-111111111111"><rsp:Command>`+long+`</rsp:Command></rsp:CommandLine>`), true)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	recv := strings.Replace(envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive", id,
		`<rsp:Receive><rsp:DesiredStream CommandId="11111111-1111-1111-1111-111111111111">stdout stderr</rsp:DesiredStream></rsp:Receive>`),
		"<w:OperationTimeout>", "<w:MaxEnvelopeSize>51200</w:MaxEnvelopeSize><w:OperationTimeout>", 1)
	var got int
	for i := 0; i < 100; i++ {
		status, body, _ := post(t, ts.httpAddr, soap, recv, true)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		if len(body) > 51200 {
			t.Fatalf("a %d-byte response to a MaxEnvelopeSize of 51200", len(body))
		}
		got += bytes.Count([]byte(body), []byte("<rsp:Stream "))
		if strings.Contains(body, "CommandState/Done") {
			if i < 5 {
				t.Errorf("300 KB in %d receives of 50 KB envelopes", i+1)
			}
			return
		}
	}
	t.Fatal("never done")
}

func TestIdleShellsAreEnded(t *testing.T) {
	srv := winrs.New(winrs.Config{User: testUser, Password: testPassword, Runner: echoRunner{}, IdleTimeout: 50 * time.Millisecond, Basic: true, AllowUnencrypted: true})
	ts := httptestServer(t, srv)
	id := createShell(t, ts)
	time.Sleep(100 * time.Millisecond)
	// The next request reaps it.
	status, body, _ := post(t, ts, soap, envelope(wsmanCommand, id, `<rsp:CommandLine><rsp:Command>dir</rsp:Command></rsp:CommandLine>`), true)
	if status != 500 || !strings.Contains(body, "w:InvalidSelectors") {
		t.Fatalf("an idle shell was still there: %d %s", status, body)
	}
	if srv.Shells() != 0 {
		t.Errorf("%d shells left", srv.Shells())
	}
}

func httptestServer(t *testing.T, srv *winrs.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ConnContext: srv.ConnContext}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return l.Addr().String()
}
