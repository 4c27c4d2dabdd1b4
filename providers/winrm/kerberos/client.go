package kerberos

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Client gets service tickets for one identity. It is safe for
// concurrent use and caches tickets until they expire.
type Client struct {
	cl        *client.Client
	principal string
	realm     string
	// tgtEnd is when a ticket cache's ticket-granting ticket expires (zero
	// for clients that log in themselves and renew).
	tgtEnd time.Time
	now    func() time.Time

	// mu serialises gokrb5's ticket requests: a realm given in an SPN is
	// added to the shared configuration's domain_realm map.
	mu sync.Mutex
}

// NewClient loads the configuration and credentials; errors are *Error.
// A client with a password or keytab logs in on its first Initiate; one
// on a ticket cache checks the cache now.
func NewClient(c Credentials) (*Client, error) {
	return newClient(c, time.Now)
}

func newClient(c Credentials, now func() time.Time) (*Client, error) {
	cfg, err := loadConfig(c.Config)
	if err != nil {
		return nil, err
	}
	settings := []func(*client.Settings){client.DisablePAFXFAST(true)}
	k := &Client{now: now}
	if c.User != "" && (c.Password != "" || c.Keytab != "") {
		user, realm := splitUser(c.User)
		if realm == "" {
			realm = c.Realm
		}
		if realm == "" {
			realm = cfg.LibDefaults.DefaultRealm
		}
		if realm == "" {
			return nil, newError(WrongRealm, "user %s names no realm, and the Kerberos configuration has no default_realm", c.User)
		}
		realm = strings.ToUpper(realm)
		k.principal, k.realm = user+"@"+realm, realm
		if c.Keytab != "" {
			kt, err := keytab.Load(c.Keytab)
			if err != nil {
				return nil, newError(BadCredentials, "read keytab %s: %v", c.Keytab, err)
			}
			k.cl = client.NewWithKeytab(user, realm, kt, cfg, settings...)
		} else {
			k.cl = client.NewWithPassword(user, realm, c.Password, cfg, settings...)
		}
		return k, nil
	}
	path, err := cachePath(c.CCache)
	if err != nil {
		return nil, err
	}
	cc, err := loadCache(path)
	if err != nil {
		return nil, err
	}
	realm := cc.GetClientRealm()
	k.principal, k.realm = cc.GetClientPrincipalName().PrincipalNameString()+"@"+realm, realm
	if c.User != "" {
		// A user without a password or keytab picks the cache it must be in.
		user, r := splitUser(c.User)
		if r == "" {
			r = realm
		}
		if !strings.EqualFold(user+"@"+r, k.principal) {
			return nil, newError(NoTicket, "the ticket cache %s holds tickets of %s, not of %s (run kinit %s)", path, k.principal, c.User, c.User)
		}
	}
	tgt, ok := cc.GetEntry(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}})
	if !ok {
		return nil, newError(NoTicket, "the ticket cache %s holds no ticket-granting ticket for %s (run kinit)", path, realm)
	}
	k.tgtEnd = tgt.EndTime
	if err := k.checkTGT(); err != nil {
		return nil, err
	}
	if k.cl, err = client.NewFromCCache(cc, cfg, settings...); err != nil {
		return nil, newError(NoTicket, "use the ticket cache %s: %v", path, err)
	}
	return k, nil
}

// loadCache reads a ticket cache file. gokrb5's parser panics on files
// that are cut short, such as an empty one.
func loadCache(path string) (cc *credentials.CCache, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, newError(NoTicket, "no ticket cache at %s (run kinit, or set KRB5CCNAME)", path)
		}
		return nil, newError(NoTicket, "read the ticket cache %s: %v", path, err)
	}
	defer func() {
		if recover() != nil {
			cc, err = nil, newError(NoTicket, "%s is not a ticket cache, or it is damaged (run kinit)", path)
		}
	}()
	cc = new(credentials.CCache)
	if err := cc.Unmarshal(b); err != nil {
		return nil, newError(NoTicket, "%s is not a ticket cache, or it is damaged (run kinit): %v", path, err)
	}
	return cc, nil
}

// checkTGT refuses a cached ticket-granting ticket that has expired:
// gokrb5 would otherwise try to log in again without credentials.
func (k *Client) checkTGT() error {
	if k.tgtEnd.IsZero() || k.now().Before(k.tgtEnd) {
		return nil
	}
	return newError(TicketExpired, "the ticket-granting ticket of %s in the ticket cache expired at %s (run kinit again)",
		k.principal, k.tgtEnd.UTC().Format(time.RFC3339))
}

// loadConfig reads krb5.conf: the path given, else KRB5_CONFIG's, else
// /etc/krb5.conf.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = os.Getenv("KRB5_CONFIG")
		// KRB5_CONFIG may list several files; the first is the one meant.
		path, _, _ = strings.Cut(path, ":")
	}
	if path == "" {
		path = "/etc/krb5.conf"
	}
	cfg, err := config.Load(path)
	if err != nil {
		var unsupported config.UnsupportedDirective
		if cfg != nil && errors.As(err, &unsupported) {
			// include and includedir are MIT extensions gokrb5 skips.
			return cfg, nil
		}
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, newError(WrongRealm, "no Kerberos configuration at %s (name one with krb5_conf or KRB5_CONFIG)", path)
		}
		return nil, newError(Other, "read the Kerberos configuration %s: %v", path, err)
	}
	return cfg, nil
}

// cachePath resolves the ticket cache: the path given, else KRB5CCNAME,
// else MIT's default, /tmp/krb5cc_UID. Only file caches can be read.
func cachePath(given string) (string, error) {
	name := given
	if name == "" {
		name = os.Getenv("KRB5CCNAME")
	}
	if name == "" {
		name = defaultCache()
	}
	if name == "" {
		return "", newError(NoTicket, "no ticket cache named (set ccache or KRB5CCNAME to a file kinit wrote)")
	}
	kind, rest, found := strings.Cut(name, ":")
	if !found || len(kind) == 1 { // a path, or a Windows drive letter
		return name, nil
	}
	if kind != "FILE" {
		return "", newError(NoTicket, "ticket cache %s: only FILE: caches can be read (kinit -c FILE:/path writes one)", name)
	}
	return rest, nil
}

// splitUser takes "user", "user@REALM" or "REALM\user".
func splitUser(u string) (user, realm string) {
	if r, name, ok := strings.Cut(u, `\`); ok {
		return name, r
	}
	if i := strings.LastIndex(u, "@"); i >= 0 {
		return u[:i], u[i+1:]
	}
	return u, ""
}

// Principal is the client's principal name, user@REALM.
func (k *Client) Principal() string { return k.principal }

// Initiator is a security context on its way: the AP-REQ was sent, the
// AP-REP is awaited.
type Initiator struct {
	spn        string
	sessionKey types.EncryptionKey
	subkey     types.EncryptionKey
	seq        uint64
	ctime      time.Time
	cusec      int
}

// Initiate gets a ticket for spn ("HTTP/host.example.com", realm
// optional) and returns the context and the token to send in an
// "Authorization: Negotiate" header. The AP-REQ asks for mutual
// authentication, integrity and confidentiality.
func (k *Client) Initiate(spn string, opts InitOptions) (*Initiator, []byte, error) {
	if err := k.checkTGT(); err != nil {
		return nil, nil, err
	}
	tkt, key, err := k.ticket(spn)
	if err != nil {
		return nil, nil, err
	}
	return initiate(spn, tkt, key, k.cl.Credentials.CName(), k.realm, k.now(), opts)
}

// initiate builds the AP-REQ for a ticket and its session key.
func initiate(spn string, tkt messages.Ticket, key types.EncryptionKey, cname types.PrincipalName, realm string, now time.Time, opts InitOptions) (*Initiator, []byte, error) {
	auth, err := types.NewAuthenticator(realm, cname)
	if err != nil {
		return nil, nil, newError(Other, "build an authenticator: %v", err)
	}
	now = now.UTC()
	auth.CTime = now.Truncate(time.Second)
	auth.Cusec = now.Nanosecond() / 1000
	if err := auth.GenerateSeqNumberAndSubKey(key.KeyType, keySize(key)); err != nil {
		return nil, nil, newError(Other, "make a subkey: %v", err)
	}
	auth.Cksum = gssChecksum(opts.ChannelBindings, flagMutual|flagSequence|flagConf|flagInteg)
	req, err := messages.NewAPReq(tkt, key, auth)
	if err != nil {
		return nil, nil, newError(Other, "build the AP-REQ for %s: %v", spn, err)
	}
	types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	b, err := req.Marshal()
	if err != nil {
		return nil, nil, newError(Other, "encode the AP-REQ for %s: %v", spn, err)
	}
	token := frameKRB5(tokAPReq, b)
	if opts.SPNEGO {
		if token, err = negTokenInit(token); err != nil {
			return nil, nil, newError(Other, "encode the SPNEGO token: %v", err)
		}
	}
	return &Initiator{
		spn: spn, sessionKey: key, subkey: auth.SubKey,
		seq: uint64(auth.SeqNumber), ctime: auth.CTime, cusec: auth.Cusec,
	}, token, nil
}

// keySize is the length of a random key of k's encryption type.
func keySize(k types.EncryptionKey) int {
	switch k.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC:
		return 16
	case etypeID.AES256_CTS_HMAC_SHA1_96:
		return 32
	}
	return len(k.KeyValue)
}

// ticket returns a service ticket for spn from the cache, or from the
// KDC (logging in first when the client has credentials of its own).
func (k *Client) ticket(spn string) (messages.Ticket, types.EncryptionKey, error) {
	name, realm, _ := strings.Cut(spn, "@")
	service, host, ok := strings.Cut(name, "/")
	if !ok || service == "" || host == "" || strings.Contains(host, "/") {
		return messages.Ticket{}, types.EncryptionKey{}, newError(UnknownSPN, "%q is not a service principal name (service/host, e.g. HTTP/host.example.com)", spn)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if realm != "" {
		if k.cl.Config.DomainRealm == nil {
			k.cl.Config.DomainRealm = config.DomainRealm{}
		}
		k.cl.Config.DomainRealm[host] = strings.ToUpper(realm)
	}
	spnRealm := k.cl.Config.ResolveRealm(host)
	if spnRealm == "" {
		spnRealm = k.realm
	}
	if k.tgtEnd.IsZero() {
		if err := k.cl.AffirmLogin(); err != nil {
			return messages.Ticket{}, types.EncryptionKey{}, kdcError(err, "log in as "+k.principal, k.realm)
		}
	}
	tkt, key, err := k.cl.GetServiceTicket(name)
	if err != nil {
		e := kdcError(err, "get a ticket for "+name, spnRealm)
		if e.Kind == UnknownSPN && !strings.EqualFold(spnRealm, k.realm) {
			// The realm's KDC was asked for a referral it does not have.
			e = newError(WrongRealm, "get a ticket for %s: the KDC of %s knows no way to realm %s, where %s is", name, k.realm, spnRealm, name)
		}
		return tkt, key, e
	}
	return tkt, key, nil
}

// Complete checks the host's answer (an AP-REP, bare or in a
// NegTokenResp) and returns the established session, keyed with the
// acceptor's subkey when it sent one.
func (i *Initiator) Complete(token []byte) (*Session, error) {
	inner, isSPNEGO, _, state, err := unwrapNegotiate(token)
	if err != nil {
		return nil, newError(Refused, "the answer of the host for %s is not a Kerberos token: %v", i.spn, err)
	}
	if len(inner) == 0 {
		return nil, newError(Refused, "the host for %s answered SPNEGO state %d without a Kerberos token (no mutual authentication)", i.spn, state)
	}
	id, msg, err := parseKRB5(inner)
	if err != nil {
		return nil, newError(Refused, "the answer of the host for %s: %v", i.spn, err)
	}
	if id == tokKRBError {
		return nil, errorFromKRBError(msg)
	}
	if id != tokAPRep {
		return nil, newError(Refused, "the host for %s answered a token of type %04x, not an AP-REP", i.spn, id)
	}
	if isSPNEGO && state != 0 {
		return nil, newError(Refused, "the host for %s answered SPNEGO state %d, not accept-completed", i.spn, state)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(msg); err != nil {
		return nil, newError(Refused, "the AP-REP of the host for %s does not parse: %v", i.spn, err)
	}
	plain, err := decrypt(rep.EncPart, i.sessionKey, keyUsageAPRep)
	if err != nil {
		return nil, newError(Refused, "the AP-REP of the host for %s does not decrypt with the ticket's session key: the host is not who %s names", i.spn, i.spn)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return nil, newError(Refused, "the AP-REP of the host for %s does not parse: %v", i.spn, err)
	}
	if !part.CTime.Equal(i.ctime) || part.Cusec != i.cusec {
		return nil, newError(Refused, "the AP-REP of the host for %s answers another authenticator", i.spn)
	}
	s, err := newSession(true, keys{
		session: i.sessionKey, initiator: i.subkey, acceptor: part.Subkey,
		initSeq: i.seq, accSeq: uint64(part.SequenceNumber),
	})
	if err != nil {
		return nil, &Error{Kind: Other, Err: err}
	}
	return s, nil
}
