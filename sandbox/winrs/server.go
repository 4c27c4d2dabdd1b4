package winrs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
	"github.com/gsd-deploy/gsd/sandbox/ntlm"
	"github.com/gsd-deploy/gsd/sandbox/winecmd"
	"github.com/gsd-deploy/gsd/sandbox/wsman"
)

// DefaultMaxEnvelopeSize is Windows' default MaxEnvelopeSizekb (500) in
// bytes.
const DefaultMaxEnvelopeSize = 500 * 1024

// Path is where WinRM listens.
const Path = "/wsman"

// DefaultMaxTimeout is Windows' default MaxTimeoutms (60000).
const DefaultMaxTimeout = 60 * time.Second

// Windows' defaults for what a request may ask.
const (
	maxShellsPerUser   = 30
	defaultIdleTimeout = 2 * time.Hour
)

// Config describes one server. Its zero values are a stock Windows Server
// after Enable-PSRemoting: Negotiate (NTLM) on, Basic off, unencrypted
// messages refused, MaxEnvelopeSizekb 500, MaxTimeoutms 60000. The
// switches are what admins turn on.
type Config struct {
	// Machine is the host name reported in faults and NTLM challenges.
	Machine string
	// User and Password are the administrator account clients use.
	User     string
	Password string
	// Accounts are further local accounts, for what Windows refuses.
	Accounts []Account
	// MaxEnvelopeSize limits requests, in bytes (DefaultMaxEnvelopeSize
	// when 0), and caps responses together with the client's own limit.
	MaxEnvelopeSize int
	// MaxTimeout is MaxTimeoutms (DefaultMaxTimeout when 0): a request's
	// OperationTimeout is cut to it, and one without any gets it, as
	// [MS-WSMV] 3.1.4.1.6 says.
	MaxTimeout time.Duration
	Runner     Runner
	// Faults, when set, injects failures (see Faults).
	Faults *Faults
	// Logf, when set, gets one line per request.
	Logf func(format string, args ...any)
	// IdleTimeout ends shells no request has touched for this long, with
	// their commands (Windows' default, 2 hours, when 0).
	IdleTimeout time.Duration
	// AllowUnencrypted is Windows' AllowUnencrypted=true: SOAP over plain
	// HTTP without message encryption is served. Off, such a request gets
	// 401 once authenticated, as on Windows.
	AllowUnencrypted bool
	// Basic is Windows' Auth/Basic=true: Basic is offered and accepted.
	Basic bool
	// StrictChannelBinding is CbtHardeningLevel=Strict: over HTTPS, an
	// NTLM exchange without a channel binding is refused. Windows'
	// default, Relaxed, checks a binding only when the client sends one.
	StrictChannelBinding bool
	// Kerberos makes the host a domain member: AP-REQs for the service
	// principals of its keytab are accepted (bare or in SPNEGO, on the
	// Negotiate or Kerberos scheme), and the principal user@REALM of the
	// keytab's realm logs on as the account named user.
	Kerberos *kerberos.Acceptor
	// RefuseNTLM is the domain policy "Network security: Restrict NTLM:
	// Incoming NTLM traffic = Deny all": an NTLM token gets a plain 401.
	RefuseNTLM bool
}

// Server is an http.Handler speaking WinRS.
type Server struct {
	cfg      Config
	ntlm     *ntlm.Server
	certHash []byte
	// realm is the Kerberos realm of the keytab's principals: the host's
	// domain.
	realm string

	mu     sync.Mutex
	shells map[string]*shell
	closed bool

	stopReaper chan struct{}
	closeOnce  sync.Once
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxEnvelopeSize <= 0 {
		cfg.MaxEnvelopeSize = DefaultMaxEnvelopeSize
	}
	if cfg.Machine == "" {
		cfg.Machine = "sandbox"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	s := &Server{
		cfg:        cfg,
		ntlm:       &ntlm.Server{Computer: cfg.Machine},
		shells:     map[string]*shell{},
		stopReaper: make(chan struct{}),
	}
	for _, a := range s.accounts() {
		s.ntlm.Accounts = append(s.ntlm.Accounts, ntlm.Account{User: a.User, Password: a.Password})
	}
	if cfg.Kerberos != nil && cfg.Kerberos.Keytab != nil && len(cfg.Kerberos.Keytab.Entries) > 0 {
		s.realm = cfg.Kerberos.Keytab.Entries[0].Principal.Realm
	}
	go s.reaper()
	return s
}

// reaper ends idle shells on a timer: a client that vanished must not
// leave its commands running until some other request comes.
func (s *Server) reaper() {
	every := min(max(s.cfg.IdleTimeout/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.reapIdle()
		case <-s.stopReaper:
			return
		}
	}
}

// SetCertificate records the HTTPS certificate so NTLM's and Kerberos'
// channel bindings can be checked against it.
func (s *Server) SetCertificate(cert *tls.Certificate) error {
	if cert == nil || len(cert.Certificate) == 0 {
		return errors.New("winrs: empty certificate")
	}
	c, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	// RFC 5929: SHA-256 unless the signature uses a stronger hash.
	var sum []byte
	switch c.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h := sha512.Sum384(c.Raw)
		sum = h[:]
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h := sha512.Sum512(c.Raw)
		sum = h[:]
	default:
		h := sha256.Sum256(c.Raw)
		sum = h[:]
	}
	s.certHash = sum
	return nil
}

// Close ends every shell and its commands.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.stopReaper) })
	s.mu.Lock()
	shells := s.shells
	s.shells = map[string]*shell{}
	s.closed = true
	s.mu.Unlock()
	for _, sh := range shells {
		s.endShell(sh)
	}
}

// Shells returns how many shells are open.
func (s *Server) Shells() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shells)
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// ServeHTTP handles one WS-Management request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f := s.cfg.Faults; f != nil {
		set := f.Current()
		if set.DelayMS > 0 {
			select {
			case <-time.After(time.Duration(set.DelayMS) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		if set.Status500 {
			http.Error(w, "injected fault: 500", http.StatusInternalServerError)
			return
		}
	}
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "WS-Management accepts POST only", http.StatusMethodNotAllowed)
		return
	}
	user, res := s.authenticate(w, r)
	switch res {
	case authAnswered:
		drain(r.Body, s.cfg.MaxEnvelopeSize)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	case authDenied:
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		s.logf("%s 401 (auth scheme %q)", r.RemoteAddr, scheme)
		drain(r.Body, s.cfg.MaxEnvelopeSize)
		s.writeUnauthorized(w)
		return
	}
	cs := stateOf(r)
	ct := r.Header.Get("Content-Type")
	var seal messageSealer // answers are sealed when the request was
	switch {
	case sealed.IsEncrypted(ct):
		_, seal = cs.get()
		if seal == nil {
			// Windows answers an encrypted message it has no context for
			// by asking for authentication.
			s.logf("%s 401: an encrypted message without a context that seals", r.RemoteAddr)
			drain(r.Body, s.cfg.MaxEnvelopeSize)
			s.writeUnauthorized(w)
			return
		}
	case r.ContentLength == 0 && (r.Header.Get("Authorization") != "" || r.TLS != nil || s.cfg.AllowUnencrypted):
		// The empty message that completes a handshake (pywinrm and gsd
		// send it before encrypting): nothing to do but say yes. Without
		// credentials over plain HTTP it is an unencrypted message like
		// any other, refused below, which makes a client that set up
		// its context elsewhere authenticate again (masterzen/winrm
		// does, per message).
		drain(r.Body, s.cfg.MaxEnvelopeSize)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	case r.TLS == nil && !s.cfg.AllowUnencrypted:
		s.logf("%s 401: unencrypted request refused (AllowUnencrypted=false)", r.RemoteAddr)
		drain(r.Body, s.cfg.MaxEnvelopeSize)
		s.writeUnauthorized(w)
		return
	default:
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/soap+xml" {
			http.Error(w, "WS-Management accepts application/soap+xml or messages encrypted with the session key", http.StatusUnsupportedMediaType)
			return
		}
	}
	body, err := s.readBody(r, cs, seal)
	if err != nil {
		var f *wsman.Fault
		switch {
		case errors.As(err, &f):
			// The rest of an oversized body is unread, or its sealing
			// streams are out of step: the connection cannot go on.
			if cs.isBroken() || seal == nil {
				w.Header().Set("Connection", "close")
			}
			s.logf("%s request over MaxEnvelopeSize: fault %s", r.RemoteAddr, f.Subcode)
			s.writeFault(w, seal, "", f)
		case errors.Is(err, errNotVerified):
			w.Header().Set("Connection", "close")
			s.logf("%s 400: %v", r.RemoteAddr, err)
			http.Error(w, "the encrypted message does not verify", http.StatusBadRequest)
		default:
			http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	env, err := wsman.Decode(body)
	if err != nil {
		f := wsman.InvalidXML(err.Error())
		errors.As(err, &f)
		s.logf("%s undecodable request: fault %s", r.RemoteAddr, f.Subcode)
		s.writeFault(w, seal, "", f)
		return
	}
	resp, fault := s.dispatch(r.Context(), user, env)
	mark := ""
	if seal != nil {
		mark = " [sealed]"
	}
	if fault != nil {
		s.logf("%s %s fault %s%s", r.RemoteAddr, short(env.Action), fault.Subcode, mark)
		s.writeFault(w, seal, env.MessageID, fault)
		return
	}
	s.logf("%s %s ok%s", r.RemoteAddr, short(env.Action), mark)
	s.write(w, seal, http.StatusOK, resp)
}

// errNotVerified reports a sealed message that does not open: tampered
// with, replayed, or from another context.
var errNotVerified = errors.New("the sealed message does not verify")

// readBody reads a request's envelope, unsealing it when seal is set. An
// envelope over MaxEnvelopeSize is a fault. A sealed one is read and
// unsealed up to a few times the limit even so: NTLM's RC4 streams and
// either mechanism's sequence numbers must stay in step for the
// connection to carry the next message.
func (s *Server) readBody(r *http.Request, cs *connState, seal messageSealer) ([]byte, error) {
	limit := s.cfg.MaxEnvelopeSize
	if seal != nil {
		limit *= 4
	}
	raw, err := readLimited(r, limit)
	if errors.Is(err, errTooLarge) {
		if seal != nil {
			// Unread, so never unsealed: the streams are out of step.
			cs.mu.Lock()
			cs.broken = true
			cs.mu.Unlock()
		}
		return nil, wsman.EnvelopeTooLarge(s.cfg.MaxEnvelopeSize)
	}
	if err != nil || seal == nil {
		return raw, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.broken {
		return nil, errNotVerified
	}
	msg, err := seal.Open(raw)
	if err != nil {
		cs.broken = true
		return nil, fmt.Errorf("%w: %v", errNotVerified, err)
	}
	if len(msg) > s.cfg.MaxEnvelopeSize {
		return nil, wsman.EnvelopeTooLarge(s.cfg.MaxEnvelopeSize)
	}
	return msg, nil
}

// write sends a SOAP answer, sealed when the request was.
func (s *Server) write(w http.ResponseWriter, seal messageSealer, status int, soap []byte) {
	if seal == nil {
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write(soap)
		return
	}
	body, err := seal.Frame(soap)
	if err != nil {
		s.logf("500: sealing the answer: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", sealed.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func short(action string) string {
	if i := strings.LastIndex(action, "/"); i >= 0 {
		return action[i+1:]
	}
	return action
}

func (s *Server) writeFault(w http.ResponseWriter, seal messageSealer, relatesTo string, f *wsman.Fault) {
	s.write(w, seal, f.HTTPStatus, f.Render(relatesTo, s.cfg.Machine))
}

func readLimited(r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return nil, errTooLarge
	}
	// Sized from Content-Length when there is one: Sends are half a
	// megabyte, and growing a buffer to that copies it several times.
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, int64(limit)+1)); err != nil {
		return nil, err
	}
	if buf.Len() > limit {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// drain reads a small body so the connection can carry the next leg of
// an NTLM handshake; a large one is left, and the connection with it.
func drain(body io.Reader, limit int) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, int64(limit)))
}

func (s *Server) dispatch(ctx context.Context, user string, env *wsman.Envelope) ([]byte, *wsman.Fault) {
	switch env.Action {
	case wsman.ActionCreate, wsman.ActionDelete, wsman.ActionCommand, wsman.ActionSend, wsman.ActionReceive, wsman.ActionSignal:
	default:
		return nil, wsman.ActionNotSupported(env.Action)
	}
	if env.ResourceURI != wsman.ResourceCmd {
		return nil, wsman.InvalidResourceURI(env.ResourceURI)
	}
	s.reapIdle()
	if env.Action == wsman.ActionCreate {
		return s.create(user, env)
	}
	id := env.Selectors["ShellId"]
	s.mu.Lock()
	sh := s.shells[id]
	s.mu.Unlock()
	if sh == nil || !strings.EqualFold(sh.owner, user) {
		return nil, wsman.ShellNotFound(id)
	}
	sh.touch()
	defer sh.touch() // a long Receive is activity until it returns
	switch env.Action {
	case wsman.ActionDelete:
		s.mu.Lock()
		delete(s.shells, id)
		s.mu.Unlock()
		s.endShell(sh)
		return wsman.Response(wsman.ActionDelete+wsman.ResponseSuffix, env.MessageID, ""), nil
	case wsman.ActionCommand:
		return s.command(sh, env)
	case wsman.ActionSend:
		return s.send(ctx, sh, env)
	case wsman.ActionReceive:
		return s.receive(ctx, sh, env)
	default:
		return s.signal(sh, env)
	}
}

func (sh *shell) touch() { sh.lastUsed.Store(time.Now().UnixNano()) }

// reapIdle ends shells idle for longer than IdleTimeout. It runs on a
// timer and on requests, so a request never finds a shell past its time.
func (s *Server) reapIdle() {
	cutoff := time.Now().Add(-s.cfg.IdleTimeout).UnixNano()
	var idle []*shell
	s.mu.Lock()
	for id, sh := range s.shells {
		if sh.lastUsed.Load() < cutoff {
			idle = append(idle, sh)
			delete(s.shells, id)
		}
	}
	s.mu.Unlock()
	for _, sh := range idle {
		s.logf("shell %s idle for over %s: ended", sh.id, s.cfg.IdleTimeout)
		s.endShell(sh)
	}
}

func (s *Server) create(user string, env *wsman.Envelope) ([]byte, *wsman.Fault) {
	if a, _ := s.account(user); a.Role != Administrator {
		return nil, wsman.AccessDenied()
	}
	body := env.Body
	if body == nil || body.Name.Space != wsman.NSShell || body.Name.Local != "Shell" {
		return nil, wsman.InvalidBody()
	}
	sh := &shell{id: wsman.NewUUID(), owner: user, env: map[string]string{}, commands: map[string]*command{}}
	sh.touch()
	sh.dir = body.Child(wsman.NSShell, "WorkingDirectory").TextOf()
	for _, v := range body.Child(wsman.NSShell, "Environment").All(wsman.NSShell, "Variable") {
		name, _ := v.AttrValue("Name")
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return nil, wsman.InvalidParameter("environment variable name " + fmt.Sprintf("%q", name))
		}
		sh.env[name] = v.Text
	}
	in := body.Child(wsman.NSShell, "InputStreams").TextOf()
	out := body.Child(wsman.NSShell, "OutputStreams").TextOf()
	if in == "" {
		in = "stdin"
	}
	if out == "" {
		out = "stdout stderr"
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, wsman.InternalError("the server is shutting down")
	}
	n := 0
	for _, o := range s.shells {
		if strings.EqualFold(o.owner, user) {
			n++
		}
	}
	if n >= maxShellsPerUser {
		s.mu.Unlock()
		return nil, &wsman.Fault{HTTPStatus: 500, Code: "s:Sender", Subcode: "w:QuotaLimit", WSManCode: 0x803381A6,
			Reason: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user.", maxShellsPerUser)}
	}
	s.shells[sh.id] = sh
	s.mu.Unlock()

	var b strings.Builder
	b.WriteString(`<x:ResourceCreated><a:Address>` + wsman.AnonymousAddress + `</a:Address><a:ReferenceParameters>`)
	b.WriteString(`<w:ResourceURI>` + wsman.ResourceCmd + `</w:ResourceURI>`)
	b.WriteString(`<w:SelectorSet><w:Selector Name="ShellId">` + sh.id + `</w:Selector></w:SelectorSet>`)
	b.WriteString(`</a:ReferenceParameters></x:ResourceCreated>`)
	b.WriteString(`<rsp:Shell><rsp:ShellId>` + sh.id + `</rsp:ShellId><rsp:ResourceUri>` + wsman.ResourceCmd + `</rsp:ResourceUri>`)
	b.WriteString(`<rsp:Owner>` + wsman.Escape(user) + `</rsp:Owner><rsp:ClientIP></rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>`)
	b.WriteString(`<rsp:InputStreams>` + wsman.Escape(in) + `</rsp:InputStreams><rsp:OutputStreams>` + wsman.Escape(out) + `</rsp:OutputStreams>`)
	b.WriteString(`<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`)
	return wsman.Response(wsman.ActionCreate+wsman.ResponseSuffix, env.MessageID, b.String()), nil
}

func isTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "TRUE") }

func (s *Server) command(sh *shell, env *wsman.Envelope) ([]byte, *wsman.Fault) {
	body := env.Body
	if body == nil || body.Name.Space != wsman.NSShell || body.Name.Local != "CommandLine" {
		return nil, wsman.InvalidBody()
	}
	cmdEl := body.Child(wsman.NSShell, "Command")
	if cmdEl == nil || strings.TrimSpace(cmdEl.Text) == "" {
		return nil, wsman.InvalidParameter("rsp:Command is empty")
	}
	// Windows joins Command and each Arguments element with one space and
	// hands the result to the shell as a raw command line.
	line := strings.TrimSpace(cmdEl.Text)
	for _, a := range body.All(wsman.NSShell, "Arguments") {
		line += " " + a.Text
	}
	if strings.ContainsRune(line, 0) {
		return nil, wsman.InvalidParameter("the command line contains a NUL character")
	}
	id, _ := body.AttrValue("CommandId")
	if id == "" {
		id = wsman.NewUUID()
	}
	// Reserve the id before anything runs: a duplicate is refused without
	// starting it.
	sh.mu.Lock()
	if sh.commands[id] != nil || sh.starting[id] {
		sh.mu.Unlock()
		return nil, wsman.InvalidParameter("CommandId " + id + " is already in use")
	}
	if sh.starting == nil {
		sh.starting = map[string]bool{}
	}
	sh.starting[id] = true
	sh.mu.Unlock()
	release := func() {
		sh.mu.Lock()
		delete(sh.starting, id)
		sh.mu.Unlock()
	}
	c := &command{id: id, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.stdout, c.stderr = newStream(c), newStream(c)
	proc, err := s.cfg.Runner.Start(winecmd.Command{
		Line:   line,
		Shell:  !isTrue(env.Options["WINRS_SKIP_CMD_SHELL"]),
		Dir:    sh.dir,
		Env:    sh.env,
		Stdout: c.stdout,
		Stderr: c.stderr,
	})
	if err != nil {
		release()
		if errors.Is(err, winecmd.ErrPowerShell) {
			return nil, &wsman.Fault{HTTPStatus: 500, Code: "s:Receiver", Subcode: "w:InternalError", WSManCode: wsman.CodeInternalError, Reason: err.Error()}
		}
		return nil, wsman.InternalError("the command could not be started: " + err.Error())
	}
	c.proc = proc
	c.stdin = newStdinQueue(proc.Stdin())
	sh.mu.Lock()
	delete(sh.starting, id)
	ended := sh.ended
	if !ended {
		sh.commands[id] = c
	}
	sh.mu.Unlock()
	go func() {
		c.code = proc.Wait()
		close(c.done)
		c.notify()
	}()
	if ended {
		// The shell went while the command started.
		endCommand(c)
		return nil, wsman.ShellNotFound(sh.id)
	}
	resp := `<rsp:CommandResponse><rsp:CommandId>` + wsman.Escape(id) + `</rsp:CommandId></rsp:CommandResponse>`
	return wsman.Response(wsman.ActionCommand+wsman.ResponseSuffix, env.MessageID, resp), nil
}

func (sh *shell) lookup(id string) *command {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.commands[id]
}

func (s *Server) send(ctx context.Context, sh *shell, env *wsman.Envelope) ([]byte, *wsman.Fault) {
	body := env.Body
	if body == nil || body.Name.Space != wsman.NSShell || body.Name.Local != "Send" {
		return nil, wsman.InvalidBody()
	}
	for _, st := range body.All(wsman.NSShell, "Stream") {
		name, _ := st.AttrValue("Name")
		if name != "stdin" {
			return nil, wsman.InvalidParameter(fmt.Sprintf("stream %q is not an input stream of this shell", name))
		}
		id, _ := st.AttrValue("CommandId")
		c := sh.lookup(id)
		if c == nil {
			return nil, wsman.CommandNotFound(id)
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Text))
		if err != nil {
			return nil, wsman.InvalidParameter("the stdin stream is not valid base64")
		}
		end, _ := st.AttrValue("End")
		if err := c.stdin.put(ctx, data, isTrue(end), s.operationTimeout(env)); err != nil {
			// Nothing of this stream was taken, so the client may send it
			// again.
			if errors.Is(err, errSendTimedOut) {
				return nil, wsman.TimedOut()
			}
			return nil, wsman.InternalError("the client went away")
		}
	}
	return wsman.Response(wsman.ActionSend+wsman.ResponseSuffix, env.MessageID, `<rsp:SendResponse></rsp:SendResponse>`), nil
}

func (s *Server) signal(sh *shell, env *wsman.Envelope) ([]byte, *wsman.Fault) {
	body := env.Body
	if body == nil || body.Name.Space != wsman.NSShell || body.Name.Local != "Signal" {
		return nil, wsman.InvalidBody()
	}
	id, _ := body.AttrValue("CommandId")
	c := sh.lookup(id)
	if c == nil {
		return nil, wsman.CommandNotFound(id)
	}
	switch code := body.Child(wsman.NSShell, "Code").TextOf(); code {
	case wsman.SignalTerm:
		sh.mu.Lock()
		delete(sh.commands, id)
		sh.mu.Unlock()
		endCommand(c)
	case wsman.SignalCtrlC:
		c.proc.Signal(winecmd.CtrlC)
	case wsman.SignalCtrlBrk:
		c.proc.Signal(winecmd.CtrlBreak)
	default:
		return nil, wsman.InvalidParameter(fmt.Sprintf("signal %q is not supported", code))
	}
	return wsman.Response(wsman.ActionSignal+wsman.ResponseSuffix, env.MessageID, `<rsp:SignalResponse></rsp:SignalResponse>`), nil
}

func endCommand(c *command) {
	if !c.finished() {
		c.proc.Signal(winecmd.Terminate)
	}
	c.stdout.discard()
	c.stderr.discard()
	c.stdin.kill()
	_ = c.proc.Stdin().Close()
}

func (s *Server) endShell(sh *shell) {
	sh.mu.Lock()
	sh.ended = true
	cmds := sh.commands
	sh.commands = map[string]*command{}
	sh.mu.Unlock()
	for _, c := range cmds {
		endCommand(c)
	}
}

// operationTimeout is how long a request may wait: what it asked, cut to
// MaxTimeoutms, which is also the default ([MS-WSMV] 3.1.4.1.6).
func (s *Server) operationTimeout(env *wsman.Envelope) time.Duration {
	if env.OperationTimeout <= 0 {
		return s.cfg.MaxTimeout
	}
	return min(env.OperationTimeout, s.cfg.MaxTimeout)
}

// receive waits for output, at most OperationTimeout, and returns as much
// as fits in the smaller of the client's and the server's envelope size.
func (s *Server) receive(ctx context.Context, sh *shell, env *wsman.Envelope) ([]byte, *wsman.Fault) {
	body := env.Body
	if body == nil || body.Name.Space != wsman.NSShell || body.Name.Local != "Receive" {
		return nil, wsman.InvalidBody()
	}
	ds := body.Child(wsman.NSShell, "DesiredStream")
	id, _ := ds.AttrValue("CommandId")
	c := sh.lookup(id)
	if c == nil {
		return nil, wsman.CommandNotFound(id)
	}
	wantOut, wantErr := true, true
	if names := strings.Fields(ds.TextOf()); len(names) > 0 {
		wantOut, wantErr = false, false
		for _, n := range names {
			wantOut = wantOut || n == "stdout"
			wantErr = wantErr || n == "stderr"
		}
	}
	timeout := s.operationTimeout(env)
	limit := s.cfg.MaxEnvelopeSize
	if env.MaxEnvelopeSize > 0 {
		limit = min(limit, env.MaxEnvelopeSize)
	}
	// Base64 grows data by 4/3; each stream element costs ~150 bytes.
	budget := (limit - wsman.Overhead - 512) * 3 / 4
	if budget <= 0 {
		// No response fits; Windows faults rather than exceed the limit.
		return nil, wsman.ResponseTooLarge(limit)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if (wantOut && c.stdout.pending() > 0) || (wantErr && c.stderr.pending() > 0) || c.finished() {
			break
		}
		select {
		case <-c.wake:
		case <-timer.C:
			return nil, wsman.TimedOut()
		case <-ctx.Done():
			return nil, wsman.InternalError("the client went away")
		}
	}
	// Output usually comes in bursts; a moment's wait fills the envelope
	// instead of answering with a few bytes.
	if !c.finished() && c.stdout.pending()+c.stderr.pending() < budget {
		select {
		case <-c.wake:
		case <-time.After(20 * time.Millisecond):
		}
	}
	var b bytes.Buffer
	b.WriteString(`<rsp:ReceiveResponse>`)
	done := c.finished()
	qid := wsman.Escape(c.id)
	writeStream := func(name string, st *stream, want bool, ended *bool) {
		if !want {
			return
		}
		if data := st.take(budget); len(data) > 0 {
			budget -= len(data)
			b.WriteString(`<rsp:Stream Name="` + name + `" CommandId="` + qid + `">`)
			b.WriteString(base64.StdEncoding.EncodeToString(data))
			b.WriteString(`</rsp:Stream>`)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if done && st.pending() == 0 && !*ended {
			*ended = true
			b.WriteString(`<rsp:Stream Name="` + name + `" CommandId="` + qid + `" End="true"></rsp:Stream>`)
		}
	}
	writeStream("stdout", c.stdout, wantOut, &c.stdoutEnded)
	writeStream("stderr", c.stderr, wantErr, &c.stderrEnded)
	drained := (!wantOut || c.stdout.pending() == 0) && (!wantErr || c.stderr.pending() == 0)
	if done && drained {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, qid, wsman.StateDone, c.code)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"></rsp:CommandState>`, qid, wsman.StateRunning)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	return wsman.Response(wsman.ActionReceive+wsman.ResponseSuffix, env.MessageID, b.String()), nil
}
