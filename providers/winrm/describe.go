package winrm

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/gsd-deploy/gsd/providers/transport"
)

// peer is what the TLS handshake showed of the host.
type peer struct {
	version uint16
	subject string
	issuer  string
	resumed bool
}

// notePeer records a verified handshake; it runs as the TLS config's
// VerifyConnection, after Go's own checks.
func (t *Transport) notePeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	c := cs.PeerCertificates[0]
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peer = &peer{version: cs.Version, subject: c.Subject.String(), issuer: c.Issuer.String(), resumed: cs.DidResume}
	return nil
}

// noteReceiveTimeout learns the host's MaxTimeoutms: Windows cuts a
// Receive's OperationTimeout to it ([MS-WSMV] 3.1.4.1.6), so a w:TimedOut
// that comes clearly before the time gsd asked for shows the cap.
func (t *Transport) noteReceiveTimeout(waited time.Duration) {
	asked := t.poll
	if waited >= asked*9/10 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hostMaxTimeout == 0 || waited > t.hostMaxTimeout {
		t.hostMaxTimeout = waited
	}
}

// Describe says how the transport reaches the host, for gsd hosts check.
func (t *Transport) Describe() transport.Description {
	d := transport.Description{Listener: t.url}
	m := mechanism{auth: "Basic as " + t.user}
	if t.pool != nil {
		m = t.pool.auth.describe()
	}
	d.Auth = m.auth
	d.Notes = append(d.Notes, m.notes...)
	t.mu.Lock()
	p, capped := t.peer, t.hostMaxTimeout
	t.mu.Unlock()
	switch {
	case t.seal:
		d.Encryption = "every message sealed with " + m.sealedWith + " (WinRM message encryption over HTTP)"
	case t.https && p != nil:
		d.Encryption = tls.VersionName(p.version)
	case t.https:
		d.Encryption = "TLS"
	default:
		d.Encryption = "none: messages travel in clear text (allow_unencrypted = true)"
	}
	switch {
	case !t.https:
		d.TLS = "not used (plain HTTP)"
	case p == nil:
		d.TLS = "no handshake made"
	case t.tls.InsecureSkipVerify:
		d.TLS = fmt.Sprintf("certificate %q from %q, NOT verified (insecure = true)", p.subject, p.issuer)
	case t.tls.RootCAs != nil:
		d.TLS = fmt.Sprintf("certificate %q from %q, verified against ca_cert", p.subject, p.issuer)
	default:
		d.TLS = fmt.Sprintf("certificate %q from %q, verified against the system's CAs", p.subject, p.issuer)
	}
	if t.https && m.bound != "" && p != nil {
		d.TLS += "; " + m.bound
	}
	if capped > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%s ends a wait for output after %s (its MaxTimeoutms) though gsd asks for %s (half of timeout = %s): gsd copes by polling again, but to keep them in step set timeout = %s, or raise the limit on the host: winrm set winrm/config @{MaxTimeoutms=\"%d\"}",
			t.addr, capped.Round(time.Second), t.poll.Round(time.Second), t.timeout, (2*capped).Round(time.Second), t.poll.Milliseconds()))
	}
	return d
}
