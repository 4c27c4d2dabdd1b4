package winrs_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/gsd-deploy/gsd/config"
	gsdtransport "github.com/gsd-deploy/gsd/providers/transport"
	gsdwinrm "github.com/gsd-deploy/gsd/providers/winrm"
	"github.com/gsd-deploy/gsd/sandbox/sandboxtest"
	"github.com/gsd-deploy/gsd/sandbox/winrs"
)

var sprintf = fmt.Sprintf

// transport is one way a client reaches the server.
type transport struct {
	name  string
	https bool
	auth  string
	// encrypt: every message sealed with the NTLM session key, the way
	// into a stock Windows Server.
	encrypt bool
}

// transports is the matrix both clients run: the stock way in (HTTP,
// NTLM, encrypted messages), then HTTP and HTTPS with Basic and NTLM
// as admins may turn them on.
var transports = []transport{
	{"http-ntlm-encrypted", false, "ntlm", true},
	{"http-basic", false, "basic", false},
	{"http-ntlm", false, "ntlm", false},
	{"https-basic", true, "basic", false},
	{"https-ntlm", true, "ntlm", false},
}

func (ts *testServer) masterzen(t *testing.T, tr transport, password, opTimeout string) *winrm.Client {
	t.Helper()
	addr := ts.httpAddr
	var ca []byte
	if tr.https {
		addr, ca = ts.httpsAddr, ts.caPEM
	}
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	ep := winrm.NewEndpoint(host, port, tr.https, false, ca, nil, nil, 2*time.Minute)
	params := winrm.NewParameters(opTimeout, "en-US", 153600)
	switch {
	case tr.encrypt:
		params.TransportDecorator = func() winrm.Transporter {
			enc, err := winrm.NewEncryption("ntlm")
			if err != nil {
				t.Fatal(err)
			}
			return enc
		}
	case tr.auth == "ntlm":
		params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	}
	c, err := winrm.NewClientWithParameters(ep, testUser, password, params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	stdout, stderr string
	code           int
}

func mzRun(t *testing.T, c *winrm.Client, stdin [][]byte, command string, args ...string) (result, error) {
	t.Helper()
	sh, err := c.CreateShell()
	if err != nil {
		return result{}, err
	}
	defer sh.Close()
	cmd, err := sh.ExecuteWithContext(context.Background(), command, args...)
	if err != nil {
		return result{}, err
	}
	var out, errb bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(&out, cmd.Stdout); done <- struct{}{} }()
	go func() { _, _ = io.Copy(&errb, cmd.Stderr); done <- struct{}{} }()
	// One Send per chunk, then an empty Send with End="true".
	// (masterzen's WriteClose is unusable: it marks the writer closed
	// before writing, so it always fails with ErrClosedPipe.)
	for _, chunk := range stdin {
		if _, err := cmd.Stdin.Write(chunk); err != nil {
			return result{}, err
		}
	}
	if len(stdin) > 0 {
		if err := cmd.Stdin.Close(); err != nil {
			return result{}, err
		}
	}
	cmd.Wait()
	<-done
	<-done
	cmd.Close()
	return result{out.String(), errb.String(), cmd.ExitCode()}, nil
}

// serverFor is the server a transport meets: the stock twin for the
// stock way in, else the one with Basic and unencrypted HTTP turned on.
func serverFor(tr transport, ts, stockTS *testServer) *testServer {
	if tr.encrypt {
		return stockTS
	}
	return ts
}

// skipConcurrentSealed skips a case that sends while masterzen/winrm's
// Receive loop polls, over encryption: its Encryption transporter keeps
// one NTLM client in a field it replaces on every message, unlocked, so
// two messages at once seal with each other's keys (against Windows as
// much as here). pywinrm, one message at a time, covers stdin and
// signals over encryption, and so does gsd.
func skipConcurrentSealed(t *testing.T, tr transport) {
	t.Helper()
	if tr.encrypt {
		t.Skip("masterzen/winrm's encryption is not safe for a Send or Signal during a Receive")
	}
}

func TestConformanceMasterzen(t *testing.T) {
	all := wineServer(t)
	stockTS := all.stockTwin(t)
	for i, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ts := serverFor(tr, all, stockTS)
			c := ts.masterzen(t, tr, testPassword, "PT60S")
			run := func(stdin [][]byte, command string, args ...string) result {
				t.Helper()
				r, err := mzRun(t, c, stdin, command, args...)
				if err != nil {
					t.Fatalf("%s: %v", command, err)
				}
				return r
			}
			t.Run("arguments", func(t *testing.T) {
				r := run(nil, "cmd", "/c", "echo", "alpha", `"beta gamma"`)
				if r.stdout != "alpha \"beta gamma\"\r\n" || r.code != 0 {
					t.Errorf("got %+v", r)
				}
			})
			t.Run("exit codes", func(t *testing.T) {
				for _, want := range []int{0, 1, 7, 255} {
					if r := run(nil, sprintf("exit %d", want)); r.code != want {
						t.Errorf("exit %d: got %d", want, r.code)
					}
				}
			})
			t.Run("streams apart", func(t *testing.T) {
				r := run(nil, "echo to-out& echo to-err 1>&2& exit 2")
				if strings.TrimSpace(r.stdout) != "to-out" || strings.TrimSpace(r.stderr) != "to-err" || r.code != 2 {
					t.Errorf("got %+v", r)
				}
			})
			t.Run("stdin in several sends", func(t *testing.T) {
				skipConcurrentSealed(t, tr)
				r := run([][]byte{[]byte("first line\r\n"), []byte("second "), []byte("line\r\n"), []byte("third line\r\n")}, "more")
				if got := strings.Fields(strings.ReplaceAll(r.stdout, "\r\n", " ")); strings.Join(got, " ") != "first line second line third line" {
					t.Errorf("stdout %q", r.stdout)
				}
			})
			t.Run("10 MB over many receives", func(t *testing.T) {
				before := ts.count("Receive ok")
				r := run(nil, `type C:\gsd-big.txt`)
				sum := sha256.Sum256([]byte(r.stdout))
				if len(r.stdout) != bigSize || hex.EncodeToString(sum[:]) != ts.bigSHA256 || r.code != 0 {
					t.Fatalf("got %d bytes, exit %d", len(r.stdout), r.code)
				}
				// 153600-byte envelopes hold ~110 KB of output each.
				if n := ts.count("Receive ok") - before; n < 50 {
					t.Errorf("10 MB came in %d receives; the client's MaxEnvelopeSize was not honoured", n)
				}
			})
			t.Run("outlives OperationTimeout", func(t *testing.T) {
				short := ts.masterzen(t, tr, testPassword, "PT1S")
				before := ts.count("Receive fault w:TimedOut")
				r, err := mzRun(t, short, nil, "ping -n 4 127.0.0.1 >nul & echo outlived")
				if err != nil || strings.TrimSpace(r.stdout) != "outlived" || r.code != 0 {
					t.Fatalf("got %+v, %v", r, err)
				}
				if ts.count("Receive fault w:TimedOut") == before {
					t.Error("no w:TimedOut fault was sent while the command ran")
				}
			})
			t.Run("unicode", func(t *testing.T) {
				r := run(nil, `type "C:\`+unicodeName+`"`)
				if r.stdout != unicodeText {
					t.Errorf("stdout %q", r.stdout)
				}
			})
			t.Run("wrong password", func(t *testing.T) {
				bad := ts.masterzen(t, tr, "wrong", "PT60S")
				_, err := bad.CreateShell()
				if err == nil || !strings.Contains(err.Error(), "401") {
					t.Errorf("err = %v, want a 401", err)
				}
			})
			t.Run("terminate by signal", func(t *testing.T) {
				skipConcurrentSealed(t, tr)
				sh, err := c.CreateShell()
				if err != nil {
					t.Fatal(err)
				}
				defer sh.Close()
				// A count no other test (or concurrent run of this one)
				// uses, to find the process.
				pingLine := sprintf("ping -n %d 127.0.0.1", uniquePingCount()+i)
				cmd, err := sh.ExecuteWithContext(context.Background(), pingLine)
				if err != nil {
					t.Fatal(err)
				}
				go func() { _, _ = io.Copy(io.Discard, cmd.Stdout) }()
				go func() { _, _ = io.Copy(io.Discard, cmd.Stderr) }()
				waitFor(t, "ping to start", func() bool { return processRunning(pingLine) })
				if err := cmd.Close(); err != nil { // Signal terminate
					t.Fatal(err)
				}
				cmd.Wait()
				waitFor(t, "ping to be terminated", func() bool { return !processRunning(pingLine) })
			})
		})
	}
}

// TestEnvelopeLimitMasterzen sends one Send bigger than the server's
// MaxEnvelopeSize with masterzen/winrm's own request encoding, and checks
// the raw answer is the EncodingLimit fault. Through masterzen's Command
// API the fault would be invisible: this version returns any response with
// a SOAP content type as success, whatever the HTTP status (its Post sets
// the error in a defer that cannot change the unnamed results), and its
// stdin Write splits by raw bytes, not base64, so a client envelope size
// near the server's produces oversized envelopes.
func TestEnvelopeLimitMasterzen(t *testing.T) {
	ts := wineServer(t)
	c := ts.masterzen(t, transport{name: "http-basic", auth: "basic"}, testPassword, "PT60S")
	host, portStr, _ := net.SplitHostPort(ts.httpAddr)
	port, _ := strconv.Atoi(portStr)
	ep := winrm.NewEndpoint(host, port, false, false, nil, nil, nil, time.Minute)
	raw := winrm.NewClientWithDial((&net.Dialer{}).Dial)
	if err := raw.Transport(ep); err != nil {
		t.Fatal(err)
	}
	url := "http://" + ts.httpAddr + "/wsman"
	// The size is checked before anything else, so the ids do not matter.
	req := winrm.NewSendInputRequest(url, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000",
		bytes.Repeat([]byte("x"), winrs.DefaultMaxEnvelopeSize), true, &c.Parameters)
	body, err := raw.Post(c, req)
	req.Free()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"w:EncodingLimit", "MaxEnvelopeSize", `Code="2150858805"`} {
		if !strings.Contains(body, want) {
			t.Errorf("fault lacks %s:\n%s", want, body)
		}
	}
	// The server is still there for the next request.
	if _, err := mzRun(t, c, nil, "exit 0"); err != nil {
		t.Fatal(err)
	}
}

type pyResult struct {
	Case   string `json:"case"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// pywinrm runs the pywinrm script against endpoint and returns the
// cases it reported, failing the test for each one that failed.
func pywinrm(t *testing.T, endpoint, ca, auth, encryption string, extra ...string) map[string]bool {
	t.Helper()
	return pywinrmWith(t, nil, endpoint, ca, auth, encryption, extra...)
}

// pywinrmWith is pywinrm with env added to the script's environment.
func pywinrmWith(t *testing.T, env []string, endpoint, ca, auth, encryption string, extra ...string) map[string]bool {
	t.Helper()
	legacyConf, err := filepath.Abs("testdata/openssl-legacy.cnf")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"testdata/pywinrm_conformance.py",
		"--endpoint", endpoint, "--auth", auth, "--user", testUser, "--password", testPassword, "--ca", ca,
		"--encryption", encryption}, extra...)
	cmd := exec.Command(sandboxtest.SystemPython, args...)
	// No proxy may intercept loopback requests.
	cmd.Env = append(append(cmd.Environ(), "NO_PROXY=*", "no_proxy=*", "OPENSSL_CONF="+legacyConf), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pywinrm script: %v\n%s", err, stderr.String())
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r pyResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line from the script: %q", sc.Text())
		}
		seen[r.Case] = true
		if !r.OK {
			t.Errorf("pywinrm %s: %s", r.Case, r.Detail)
		}
	}
	return seen
}

func TestConformancePywinrm(t *testing.T) {
	sandboxtest.RequirePywinrm(t)
	all := wineServer(t)
	stockTS := all.stockTwin(t)
	want := []string{"arguments", "lines_3000", "exit_codes", "streams", "stdin", "big_output", "operation_timeout",
		"signal", "wrong_password", "domain_user", "envelope_limit", "unicode", "shell_not_found"}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ts := serverFor(tr, all, stockTS)
			endpoint := "http://" + ts.httpAddr + "/wsman"
			ca := ""
			if tr.https {
				endpoint, ca = "https://"+ts.httpsAddr+"/wsman", ts.caFile
			}
			encryption := "never"
			if tr.encrypt {
				encryption = "always"
			}
			before := ts.count("[sealed]")
			seen := pywinrm(t, endpoint, ca, tr.auth, encryption,
				"--big-size", strconv.Itoa(bigSize), "--big-sha256", ts.bigSHA256,
				"--unicode-name", unicodeName, "--unicode-text", unicodeText,
				"--max-envelope", strconv.Itoa(winrs.DefaultMaxEnvelopeSize))
			for _, c := range want {
				if !seen[c] {
					t.Errorf("pywinrm case %s did not report", c)
				}
			}
			// The server really unsealed pywinrm's messages, and only
			// when they were sealed.
			if sealedNow := ts.count("[sealed]") - before; tr.encrypt != (sealedNow > 0) {
				t.Errorf("%d sealed requests with message_encryption=%s", sealedNow, encryption)
			}
			// requests-ntlm binds NTLM to the TLS certificate; the server
			// checks the binding rather than ignoring it.
			if tr.https && tr.auth == "ntlm" && ts.count("NTLM channel binding verified") == 0 {
				t.Error("no NTLM channel binding was verified over HTTPS")
			}
		})
	}
}

// A stock Windows Server refuses clear SOAP over HTTP, whatever the
// password: pywinrm with message_encryption='never' gets 401, as from
// Windows, while 'always' is served.
func TestStockHostRefusesUnencrypted(t *testing.T) {
	sandboxtest.RequirePywinrm(t)
	ts := startServerWith(t, echoRunner{}, nil, stock)
	endpoint := "http://" + ts.httpAddr + "/wsman"
	noExtras := []string{"--big-size", "0", "--big-sha256", "", "--unicode-name", "", "--unicode-text", "", "--max-envelope", "0"}
	if seen := pywinrm(t, endpoint, "", "ntlm", "never", append(noExtras, "--only", "refused_unencrypted")...); !seen["refused_unencrypted"] {
		t.Error("the refusal case did not report")
	}
	if ts.count("unencrypted request refused") == 0 {
		t.Error("the server did not log the refusal")
	}
	if seen := pywinrm(t, endpoint, "", "ntlm", "always", append(noExtras, "--only", "domain_user")...); !seen["domain_user"] {
		t.Error("an encrypted shell was not served")
	}
}

// CbtHardeningLevel = Strict: over HTTPS, pywinrm (which binds NTLM to the
// certificate) is served, and masterzen/winrm's NTLM, which sends no
// channel binding, is refused.
func TestStrictChannelBinding(t *testing.T) {
	sandboxtest.RequirePywinrm(t)
	ts := startServerWith(t, echoRunner{}, nil, func(c *winrs.Config) { stock(c); c.StrictChannelBinding = true })
	noExtras := []string{"--big-size", "0", "--big-sha256", "", "--unicode-name", "", "--unicode-text", "", "--max-envelope", "0"}
	pywinrm(t, "https://"+ts.httpsAddr+"/wsman", ts.caFile, "ntlm", "never", append(noExtras, "--only", "domain_user")...)
	c := ts.masterzen(t, transport{name: "https-ntlm", https: true, auth: "ntlm"}, testPassword, "PT60S")
	if _, err := c.CreateShell(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("NTLM without a channel binding: err = %v, want a 401", err)
	}
	if ts.count("without a channel binding refused") == 0 {
		t.Error("the server did not log why it refused")
	}
}

// uniquePingCount is a ping count (long enough never to finish in a test)
// that tells this process's pings from those of any concurrent run.
func uniquePingCount() int { return 1000 + os.Getpid()%50000*20 }

// processRunning reports whether a process with exactly this command line
// exists (Wine shows a Windows process's command line in /proc).
func processRunning(cmdline string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == cmdline {
			return true
		}
	}
	return false
}

// waitFor polls cond. The bound only keeps a broken build from hanging
// the suite; it is far above any expected wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestCtrlC sends the ctrl_c signal, which neither client library offers,
// as a raw request: the command must end and report Done.
func TestCtrlC(t *testing.T) {
	ts := wineServer(t)
	id := createShell(t, ts.httpAddr)
	const cid = "22222222-2222-2222-2222-222222222222"
	pingLine := sprintf("ping -n %d 127.0.0.1", uniquePingCount()+10)
	status, body, _ := post(t, ts.httpAddr, soap, envelope(wsmanCommand, id,
		`<rsp:CommandLine CommandId="`+cid+`"><rsp:Command>`+pingLine+`</rsp:Command></rsp:CommandLine>`), true)
	if status != 200 {
		t.Fatalf("command: %d %s", status, body)
	}
	waitFor(t, "ping to start", func() bool { return processRunning(pingLine) })
	status, body, _ = post(t, ts.httpAddr, soap, envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal", id,
		`<rsp:Signal CommandId="`+cid+`"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c</rsp:Code></rsp:Signal>`), true)
	if status != 200 || !strings.Contains(body, "SignalResponse") {
		t.Fatalf("signal: %d %s", status, body)
	}
	recv := envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive", id,
		`<rsp:Receive><rsp:DesiredStream CommandId="`+cid+`">stdout stderr</rsp:DesiredStream></rsp:Receive>`)
	waitFor(t, "Done after ctrl_c", func() bool {
		_, body, _ := post(t, ts.httpAddr, soap, recv, true)
		return strings.Contains(body, "CommandState/Done")
	})
}

// TestConformanceGsd drives the stock server with gsd's own transport,
// the default way in: HTTP, NTLM, every message sealed.
func TestConformanceGsd(t *testing.T) {
	all := wineServer(t)
	ts := all.stockTwin(t)
	host, portStr, _ := net.SplitHostPort(ts.httpAddr)
	port, _ := strconv.Atoi(portStr)
	tr, err := gsdwinrm.New(&config.Host{Name: "sandbox", Address: host, WinRM: &config.WinRM{
		Port: port, User: testUser, Password: config.Text{Value: testPassword, Sensitive: true}, Timeout: time.Minute,
	}}, gsdwinrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	run := func(command, stdin string) gsdtransport.Result {
		t.Helper()
		var in io.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		r, err := gsdtransport.Run(context.Background(), tr, command, in, 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", command, err)
		}
		return r
	}
	before := ts.count("[sealed]")
	if r := run("echo to-out& echo to-err 1>&2& exit 7", ""); strings.TrimSpace(string(r.Stdout)) != "to-out" ||
		strings.TrimSpace(string(r.Stderr)) != "to-err" || r.ExitCode != 7 {
		t.Errorf("streams and exit code: %+v", r)
	}
	r := run("for /L %i in (1,1,3000) do @echo line %i", "")
	if lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\r\n"); len(lines) != 3000 || lines[2999] != "line 3000" {
		t.Errorf("3,000 lines: got %d, last %q", len(lines), lines[len(lines)-1])
	}
	if r := run("more", "first\r\nsecond\r\n"); strings.Fields(string(r.Stdout))[1] != "second" {
		t.Errorf("stdin: %q", r.Stdout)
	}
	if ts.count("[sealed]") == before {
		t.Error("no message reached the server sealed")
	}
}
