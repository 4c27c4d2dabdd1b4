package kerberos

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

const (
	keyUsageAuthenticator = keyusage.AP_REQ_AUTHENTICATOR
	keyUsageAPRep         = keyusage.AP_REP_ENCPART
)

func decrypt(ed types.EncryptedData, key types.EncryptionKey, usage uint32) ([]byte, error) {
	return crypto.DecryptEncPart(ed, key, usage)
}

// replays remembers the authenticators an acceptor saw within the clock
// skew it tolerates (RFC 4120 section 3.2.3); older ones fail the skew
// check anyway.
type replays struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// add reports whether key was new, forgetting entries older than horizon.
func (r *replays) add(key string, at, horizon time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	if _, ok := r.seen[key]; ok {
		return false
	}
	for k, t := range r.seen {
		if t.Before(horizon) {
			delete(r.seen, k)
		}
	}
	r.seen[key] = at
	return true
}

// acceptorReplays keeps the replay caches of acceptors by keytab, since
// Acceptor is a plain struct its users build (and may copy).
var acceptorReplays sync.Map

// Accept verifies the first token of a client (bare Kerberos or SPNEGO);
// errors are *Error, with the KRB-ERROR to send back in Token when the
// client deserves one.
func (a *Acceptor) Accept(token []byte) (*Accepted, error) {
	inner, isSPNEGO, mech, _, err := unwrapNegotiate(token)
	if err != nil {
		return nil, newError(Refused, "the client's token: %v", err)
	}
	id, msg, err := parseKRB5(inner)
	if err != nil {
		return nil, newError(Refused, "the client's Kerberos token: %v", err)
	}
	if id != tokAPReq {
		return nil, newError(Refused, "the client's token is of type %04x, not an AP-REQ", id)
	}
	var req messages.APReq
	if err := req.Unmarshal(msg); err != nil {
		return nil, newError(Refused, "the client's AP-REQ does not parse: %v", err)
	}
	if mech == nil {
		mech = oidKRB5
	}
	r := answer{a: a, spnego: isSPNEGO, mech: mech, sname: req.Ticket.SName, realm: req.Ticket.Realm}
	if a.Keytab == nil {
		return nil, newError(Refused, "the acceptor has no keytab")
	}
	now := a.now()
	skew := a.MaxSkew
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	spn := req.Ticket.SName.PrincipalNameString() + "@" + req.Ticket.Realm

	key, _, err := a.Keytab.GetEncryptionKey(req.Ticket.SName, req.Ticket.Realm, req.Ticket.EncPart.KVNO, req.Ticket.EncPart.EType)
	if err != nil {
		return r.fail(errorcode.KRB_AP_ERR_NOKEY, Refused, "the keytab holds no key of %s for encryption type %d, version %d", spn, req.Ticket.EncPart.EType, req.Ticket.EncPart.KVNO)
	}
	if err := req.Ticket.Decrypt(key); err != nil {
		return r.fail(errorcode.KRB_AP_ERR_MODIFIED, Refused, "the ticket for %s does not decrypt with the keytab's key (the keytab is older than the account's key?)", spn)
	}
	tp := req.Ticket.DecryptedEncPart
	start := tp.StartTime
	if start.IsZero() {
		start = tp.AuthTime
	}
	if start.Sub(now) > skew {
		return r.fail(errorcode.KRB_AP_ERR_TKT_NYV, ClockSkew, "the ticket for %s is valid only from %s: this host's clock is behind the KDC's", spn, start.UTC().Format(time.RFC3339))
	}
	if now.Sub(tp.EndTime) > skew {
		return r.fail(errorcode.KRB_AP_ERR_TKT_EXPIRED, TicketExpired, "the ticket for %s expired at %s", spn, tp.EndTime.UTC().Format(time.RFC3339))
	}
	plain, err := decrypt(req.EncryptedAuthenticator, tp.Key, keyUsageAuthenticator)
	if err != nil {
		return r.fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, Refused, "the authenticator does not decrypt with the ticket's session key")
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		return r.fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, Refused, "the authenticator does not parse: %v", err)
	}
	client := tp.CName.PrincipalNameString() + "@" + tp.CRealm
	if !auth.CName.Equal(tp.CName) || auth.CRealm != tp.CRealm {
		return r.fail(errorcode.KRB_AP_ERR_BADMATCH, Refused, "the authenticator names another client than the ticket")
	}
	ctime := auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)
	if d := now.Sub(ctime); d > skew || -d > skew {
		return r.fail(errorcode.KRB_AP_ERR_SKEW, ClockSkew, "the clocks of %s and of this host differ by %s, more than the %s allowed", client, d.Abs().Round(time.Second), skew)
	}
	replayKey := fmt.Sprintf("%s|%s|%d|%d", client, spn, auth.CTime.Unix(), auth.Cusec)
	cache, _ := acceptorReplays.LoadOrStore(a.Keytab, &replays{})
	if !cache.(*replays).add(replayKey, ctime, now.Add(-2*skew)) {
		return r.fail(errorcode.KRB_AP_ERR_REPEAT, Refused, "the authenticator of %s was replayed", client)
	}
	bnd, gssFlags, err := parseGSSChecksum(auth.Cksum)
	if err != nil {
		return r.fail(errorcode.KRB_AP_ERR_INAPP_CKSUM, Refused, "%v", err)
	}

	k := keys{session: tp.Key, initiator: auth.SubKey, initSeq: uint64(auth.SeqNumber)}
	var out []byte
	if types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) || gssFlags&flagMutual != 0 {
		base := auth.SubKey
		if base.KeyType == 0 {
			base = tp.Key
		}
		if out, err = a.apRep(&auth, tp.Key, base, &k); err != nil {
			return nil, newError(Other, "make the AP-REP: %v", err)
		}
		out = frameKRB5(tokAPRep, out)
	} else {
		// Without mutual authentication MIT's acceptor numbers its
		// messages on from the initiator's sequence number.
		k.accSeq = k.initSeq
	}
	if isSPNEGO {
		if out, err = negTokenResp(spnego.NegStateAcceptCompleted, mech, out); err != nil {
			return nil, newError(Other, "encode the SPNEGO answer: %v", err)
		}
	}
	s, err := newSession(false, k)
	if err != nil {
		return r.fail(errorcode.KDC_ERR_ETYPE_NOSUPP, Refused, "%v", err)
	}
	return &Accepted{Client: client, Session: s, Token: out, ChannelBindings: bnd}, nil
}

func (a *Acceptor) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// apRep makes the AP-REP: the authenticator's time, a fresh acceptor
// subkey of the initiator's key's type and a sequence number, sealed
// with the ticket's session key.
func (a *Acceptor) apRep(auth *types.Authenticator, sessionKey, base types.EncryptionKey, k *keys) ([]byte, error) {
	et, err := crypto.GetEtype(base.KeyType)
	if err != nil {
		return nil, err
	}
	sub, err := types.GenerateEncryptionKey(et)
	if err != nil {
		return nil, err
	}
	var seq [4]byte
	if _, err := rand.Read(seq[:]); err != nil {
		return nil, err
	}
	// Non-zero (an absent field reads as 0) and below 2^30, as MIT keeps
	// it for peers that read the number as signed.
	k.accSeq = uint64(binary.BigEndian.Uint32(seq[:])&0x3fffffff | 1)
	k.acceptor = sub
	part := messages.EncAPRepPart{CTime: auth.CTime, Cusec: auth.Cusec, Subkey: sub, SequenceNumber: int64(k.accSeq)}
	b, err := asn1.Marshal(part)
	if err != nil {
		return nil, err
	}
	ed, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(b, asnAppTag.EncAPRepPart), sessionKey, keyUsageAPRep, 0)
	if err != nil {
		return nil, err
	}
	b, err = asn1.Marshal(messages.APRep{PVNO: iana.PVNO, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, err
	}
	return asn1tools.AddASNAppTag(b, asnAppTag.APREP), nil
}

// answer builds the failures of one Accept call.
type answer struct {
	a      *Acceptor
	spnego bool
	mech   asn1.ObjectIdentifier
	sname  types.PrincipalName
	realm  string
}

// fail returns an *Error of kind with the KRB-ERROR code to send back,
// framed as the client's token was.
func (r answer) fail(code int32, kind Kind, format string, args ...any) (*Accepted, error) {
	e := newError(kind, format, args...)
	ke := messages.NewKRBError(r.sname, r.realm, code, "")
	now := r.a.now().UTC()
	ke.STime, ke.Susec = now.Truncate(time.Second), now.Nanosecond()/1000
	b, err := ke.Marshal()
	if err != nil {
		return nil, e
	}
	e.Token = frameKRB5(tokKRBError, b)
	if r.spnego {
		if e.Token, err = negTokenResp(spnego.NegStateReject, r.mech, e.Token); err != nil {
			e.Token = nil
		}
	}
	return nil, e
}
