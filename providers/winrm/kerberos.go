package winrm

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/gsd-deploy/gsd/config"
	"github.com/gsd-deploy/gsd/providers/transport"
	"github.com/gsd-deploy/gsd/providers/winrm/kerberos"
	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
)

// authenticator returns how the transport's connections authenticate.
func (t *Transport) authenticator(host *config.Host) (authenticator, error) {
	cfg := host.WinRM
	ntlm := &ntlmAuth{user: cfg.User, password: cfg.Password.Value}
	if t.auth == config.AuthNTLM {
		return ntlm, nil
	}
	spn := cfg.SPN
	if spn == "" {
		spn = config.DefaultSPN(host.Address)
	}
	if spn == "" {
		return nil, fmt.Errorf(`host %s: Kerberos needs the host's service principal, and the IP address %s names none: set spn = "HTTP/<the host's DNS name>"`, host.Name, host.Address)
	}
	krb := &kerberosAuth{t: t, spn: spn, creds: kerberos.Credentials{
		Config:   cfg.KRB5Conf,
		CCache:   cfg.CCache,
		Keytab:   cfg.Keytab,
		User:     cfg.User,
		Password: cfg.Password.Value,
		Realm:    cfg.Realm,
	}}
	if t.auth == config.AuthKerberos {
		return krb, nil
	}
	n := &negotiateAuth{krb: krb}
	if cfg.User != "" && cfg.Password.Value != "" && cfg.Keytab == "" {
		n.ntlm = ntlm
		if cfg.Realm != "" && !strings.ContainsAny(cfg.User, `@\`) {
			// The realm says whose account it is; Windows takes
			// user@realm (a UPN) as the user name of an NTLM logon.
			n.ntlm = &ntlmAuth{user: cfg.User + "@" + cfg.Realm, password: cfg.Password.Value}
		}
	}
	return n, nil
}

// sealHeaderSize is the room a sealed message's header takes: NTLM's
// signature, or at most what a Kerberos wrap token's header may take.
func (t *Transport) sealHeaderSize() int {
	if t.auth == config.AuthNTLM {
		return sealed.SignatureSize
	}
	return sealed.MaxSignatureSize
}

// kerberosAuth authenticates connections with Kerberos in SPNEGO, as
// Windows' Negotiate does in a domain. One login serves every connection
// of every host with the same credentials, so the KDC sees one login a
// run and service tickets are fetched once and reused; each connection
// gets its own AP-REQ, and with it its own session keys.
type kerberosAuth struct {
	t     *Transport
	spn   string
	creds kerberos.Credentials

	mu    sync.Mutex
	login *kerberosLogin
}

// kerberosLogin is one identity's client, shared by the process's
// transports. refused keeps the KDC's refusal of its password or keytab:
// asking again for every host would only count towards the domain's
// lockout threshold.
type kerberosLogin struct {
	client *kerberos.Client

	mu      sync.Mutex
	refused error
}

var (
	kerberosLoginsMu sync.Mutex
	kerberosLogins   = map[kerberos.Credentials]*kerberosLogin{}
)

// loggedIn returns the shared login of the transport's credentials. A
// client that could not be made is tried again on the next connection:
// a kinit in between may mend it.
func (a *kerberosAuth) loggedIn() (*kerberosLogin, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.login != nil {
		return a.login, nil
	}
	kerberosLoginsMu.Lock()
	defer kerberosLoginsMu.Unlock()
	if l := kerberosLogins[a.creds]; l != nil {
		a.login = l
		return l, nil
	}
	c, err := kerberos.NewClient(a.creds)
	if err != nil {
		return nil, err
	}
	a.login = &kerberosLogin{client: c}
	kerberosLogins[a.creds] = a.login
	return a.login, nil
}

// start gets a service ticket and makes the first token: everything
// before a byte goes to the host, so Negotiate can still choose NTLM when
// it fails.
func (a *kerberosAuth) start(cert *x509.Certificate) (*kerberos.Initiator, []byte, error) {
	l, err := a.loggedIn()
	if err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	refused := l.refused
	l.mu.Unlock()
	if refused != nil {
		return nil, nil, refused
	}
	opts := kerberos.InitOptions{SPNEGO: true}
	if cert != nil {
		opts.ChannelBindings = channelBindings(cert)
	}
	init, token, err := l.client.Initiate(a.spn, opts)
	var ke *kerberos.Error
	if errors.As(err, &ke) && ke.Kind == kerberos.BadCredentials {
		l.mu.Lock()
		l.refused = err
		l.mu.Unlock()
	}
	return init, token, err
}

func (a *kerberosAuth) authenticate(ctx context.Context, p *connPool, c *authConn, cert *x509.Certificate) (securityContext, error) {
	init, token, err := a.start(cert)
	if err != nil {
		return nil, err
	}
	return a.finish(ctx, p, c, init, token)
}

// finish sends the AP-REQ on an empty request and completes the context
// with the host's AP-REP. Mutual authentication is required: a host that
// answers 200 without proving it holds the service key gets no messages.
func (a *kerberosAuth) finish(ctx context.Context, p *connPool, c *authConn, init *kerberos.Initiator, token []byte) (securityContext, error) {
	r, _, err := p.roundTrip(ctx, c, negotiateHeader(token), "", nil)
	if err != nil {
		return nil, err
	}
	answer, _ := negotiateToken(r.header)
	switch {
	case r.status == http.StatusOK && len(answer) > 0:
		s, err := init.Complete(answer)
		if err != nil {
			return nil, err
		}
		return s, nil
	case r.status == http.StatusOK:
		return nil, errNoAPRep
	case r.status == http.StatusUnauthorized && len(answer) > 0:
		// A KRB-ERROR: the host says why (a clock skew, a ticket for a
		// key it does not hold).
		_, err := init.Complete(answer)
		if err == nil {
			err = &kerberos.Error{Kind: kerberos.Refused, Err: errors.New("the host answered 401 with a token that is no error")}
		}
		return nil, err
	}
	return nil, &handshakeError{kind: errKerberosRefused, status: r.status, offers: schemes(r.header)}
}

func (a *kerberosAuth) principal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.login != nil:
		return a.login.client.Principal()
	case a.creds.User != "":
		return a.creds.User
	}
	return "the ticket cache's principal"
}

func (a *kerberosAuth) describe() mechanism {
	from := "ticket cache"
	switch {
	case a.creds.Keytab != "":
		from = "keytab " + a.creds.Keytab
	case a.creds.Password != "":
		from = "password"
	case a.creds.CCache != "":
		from = "ticket cache " + a.creds.CCache
	}
	who := a.principal()
	return mechanism{
		auth:       fmt.Sprintf("Kerberos as %s (%s) for %s", who, from, a.spn),
		account:    who,
		sealedWith: "the Kerberos session key",
		bound:      "Kerberos bound to it by a channel binding",
	}
}

// negotiateAuth is Windows' Negotiate: Kerberos, and NTLM only when no
// Kerberos ticket can be had (no ticket cache, no KDC, a service
// principal the KDC does not know) and a password is given. Once
// Kerberos could not be had it is not tried again on this transport.
type negotiateAuth struct {
	krb  *kerberosAuth
	ntlm *ntlmAuth // nil without user and password

	mu       sync.Mutex
	fellBack error // why Kerberos could not be had, once NTLM is used
}

func (a *negotiateAuth) authenticate(ctx context.Context, p *connPool, c *authConn, cert *x509.Certificate) (securityContext, error) {
	a.mu.Lock()
	why := a.fellBack
	a.mu.Unlock()
	if why == nil {
		init, token, err := a.krb.start(cert)
		if err == nil {
			return a.krb.finish(ctx, p, c, init, token)
		}
		if a.ntlm == nil || !unobtainable(err) {
			return nil, err
		}
		a.mu.Lock()
		a.fellBack, why = err, err
		a.mu.Unlock()
	}
	sec, err := a.ntlm.authenticate(ctx, p, c, cert)
	if err != nil {
		return nil, &fallbackError{kerberos: why, ntlm: err}
	}
	return sec, nil
}

func (a *negotiateAuth) describe() mechanism {
	a.mu.Lock()
	why := a.fellBack
	a.mu.Unlock()
	if why == nil {
		m := a.krb.describe()
		m.auth = "Negotiate: " + m.auth
		return m
	}
	m := a.ntlm.describe()
	m.auth = "Negotiate: " + m.auth
	m.notes = append(m.notes, fmt.Sprintf("Negotiate fell back to NTLM because Kerberos could not be had: %v", why))
	return m
}

// unobtainable reports a Kerberos failure that leaves Negotiate free to
// use NTLM: no ticket could be had at all. A refused password, a host
// that refused the ticket or a clock skew are not: NTLM would only hide
// them.
func unobtainable(err error) bool {
	var k *kerberos.Error
	if !errors.As(err, &k) {
		return false
	}
	switch k.Kind {
	case kerberos.NoTicket, kerberos.TicketExpired, kerberos.KDCUnreachable, kerberos.UnknownSPN, kerberos.WrongRealm:
		return true
	}
	return false
}

// fallbackError is Negotiate's NTLM failing after Kerberos could not be
// had: both reasons matter.
type fallbackError struct {
	kerberos, ntlm error
}

func (e *fallbackError) Error() string {
	return fmt.Sprintf("Kerberos: %v; NTLM: %v", e.kerberos, e.ntlm)
}
func (e *fallbackError) Unwrap() error { return e.ntlm }

var (
	// errNoAPRep: the host accepted the AP-REQ without proving itself.
	errNoAPRep = errors.New("no AP-REP")
	// errKerberosRefused: a plain 401 to the AP-REQ.
	errKerberosRefused = errors.New("kerberos refused")
)

// kerberosFailure phrases a Kerberos failure: what went wrong and the
// fix, naming the host and principals (never a ticket or key).
func (t *Transport) kerberosFailure(k *kerberos.Error) error {
	a := t.kerberos()
	spn, who := "", ""
	if a != nil {
		spn, who = a.spn, a.principal()
	}
	var msg string
	switch k.Kind {
	case kerberos.NoTicket:
		msg = fmt.Sprintf("no Kerberos ticket to log in to %s with (%v). Run kinit <user>@<REALM> first (or set ccache to the cache a kinit wrote); for unattended runs give user and keytab in the winrm block", t.addr, k)
	case kerberos.TicketExpired:
		msg = fmt.Sprintf("the Kerberos ticket gsd would log in to %s with has expired (%v). Run kinit again (kinit -R renews a ticket that is still renewable); for unattended runs give user and keytab, from which gsd gets tickets itself", t.addr, k)
	case kerberos.ClockSkew:
		msg = fmt.Sprintf("%s and this machine disagree about the time by more than Kerberos allows (5 minutes by default) (%v). Set both clocks right: on Windows w32tm /resync (a domain member takes the time of its domain controller), here an NTP client (timedatectl set-ntp true, or chronyc makestep)", t.addr, k)
	case kerberos.UnknownSPN:
		msg = fmt.Sprintf("the KDC knows no service principal %s, so there is no ticket for %s (%v). Register it on the host's computer account (setspn -S %s <computer name>), or set spn to a name the host has registered (setspn -L <computer name> lists them); a host reached by an alias or an IP address needs spn", spn, t.addr, k, spn)
	case kerberos.WrongRealm:
		msg = fmt.Sprintf("Kerberos cannot find the realm for %s as %s (%v). Check realm (or the realm in user) against the domain's (its DNS name in capitals) and that krb5.conf lists it under [realms] with its KDCs (or maps the host's domain to it in [domain_realm])", spn, who, k)
	case kerberos.KDCUnreachable:
		msg = fmt.Sprintf("no Kerberos KDC answered for %s's ticket to %s (%v). Check the kdc lines of krb5.conf's realm (or the domain's _kerberos._tcp DNS records) and that port 88 of a domain controller is reachable from here", who, t.addr, k)
	case kerberos.BadCredentials:
		msg = fmt.Sprintf("the KDC refused the credentials of %s (%v). Check the password; a keytab made before the password last changed holds old keys: export it again (ktpass, or kadmin's ktadd -norandkey)", who, k)
	case kerberos.Refused:
		msg = fmt.Sprintf("%s refused gsd's Kerberos ticket for %s, or its answer did not verify (%v). The host's keys may not match the KDC's (a computer account reset, or %s registered on another account: setspn -Q %s finds it)", t.addr, spn, k, spn, spn)
	default:
		msg = fmt.Sprintf("Kerberos authentication to %s as %s failed: %v", t.addr, who, k)
	}
	return transport.Errorf(transport.ErrAuth, "%s", msg)
}

// kerberos is the transport's Kerberos authenticator, if it has one.
func (t *Transport) kerberos() *kerberosAuth {
	if t.pool == nil {
		return nil
	}
	switch a := t.pool.auth.(type) {
	case *kerberosAuth:
		return a
	case *negotiateAuth:
		return a.krb
	}
	return nil
}

// kerberosHandshakeFailure phrases a host's refusal of the Kerberos
// handshake that carried no reason.
func (t *Transport) kerberosHandshakeFailure(h *handshakeError) error {
	spn := ""
	if a := t.kerberos(); a != nil {
		spn = a.spn
	}
	if h.status == http.StatusUnauthorized && !strings.Contains(h.offers, "Negotiate") && !strings.Contains(h.offers, "Kerberos") {
		return transport.Errorf(transport.ErrAuth, `%s does not offer Kerberos (it offers %s): enable it there (winrm set winrm/config/service/auth @{Kerberos="true";Negotiate="true"})`, t.addr, h.offers)
	}
	if h.status == http.StatusUnauthorized {
		return transport.Errorf(transport.ErrAuth, `%s refused gsd's Kerberos ticket for %s without saying why (HTTP 401): the account may not use WinRM on that host, or the host's keys for %s do not match the KDC's (setspn -Q %s shows which account holds it)`, t.addr, spn, spn, spn)
	}
	hint := ""
	if h.status == http.StatusBadRequest && !t.https {
		hint = "; if that port is an HTTPS listener, set https = true"
	}
	return fmt.Errorf("%s answered gsd's Kerberos AP-REQ with HTTP %d%s", t.addr, h.status, hint)
}
