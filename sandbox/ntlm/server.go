package ntlm

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 NTLM is defined over MD4; there is no choice here.
	"golang.org/x/crypto/md4"
)

var signature = []byte("NTLMSSP\x00")

// Message types.
const (
	typeNegotiate    = 1
	typeChallenge    = 2
	typeAuthenticate = 3
)

// Negotiate flags ([MS-NLMP] 2.2.2.5) the server understands.
const (
	flagUnicode          = 0x00000001
	flagOEM              = 0x00000002
	flagRequestTarget    = 0x00000004
	flagSign             = 0x00000010
	flagSeal             = 0x00000020
	flagNTLM             = 0x00000200
	flagAlwaysSign       = 0x00008000
	flagTargetTypeServer = 0x00020000
	flagExtendedSession  = 0x00080000
	flagTargetInfo       = 0x00800000
	flagVersion          = 0x02000000
	flag128              = 0x20000000
	flagKeyExch          = 0x40000000
	flag56               = 0x80000000
)

// AV pair ids ([MS-NLMP] 2.2.2.1).
const (
	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDNSComputerName = 3
	avDNSDomainName   = 4
	avFlags           = 6
	avTimestamp       = 7
	avChannelBindings = 10
)

// avFlagMIC in MsvAvFlags says the AUTHENTICATE message carries a MIC.
const avFlagMIC = 0x2

// Account is a local user of a sandbox host.
type Account struct {
	User     string
	Password string
}

// Server issues challenges for a host. Computer is its NetBIOS name.
type Server struct {
	Computer string
	Accounts []Account
	// Now is the clock, replaceable in tests.
	Now func() time.Time
}

// Pending is an issued challenge waiting for the client's AUTHENTICATE
// message on the same connection. It keeps both earlier messages: the
// AUTHENTICATE message's MIC covers them.
type Pending struct {
	server    *Server
	challenge [8]byte
	negotiate []byte
	message   []byte // the CHALLENGE message sent
}

// ErrBadMessage reports a message that is not well-formed NTLM.
var ErrBadMessage = errors.New("ntlm: malformed message")

// ErrDenied reports wrong credentials.
var ErrDenied = errors.New("ntlm: the user name or password is incorrect")

// IsNegotiate reports whether msg is an NTLM NEGOTIATE message.
func IsNegotiate(msg []byte) bool { return messageType(msg) == typeNegotiate }

// IsAuthenticate reports whether msg is an NTLM AUTHENTICATE message.
func IsAuthenticate(msg []byte) bool { return messageType(msg) == typeAuthenticate }

func messageType(msg []byte) uint32 {
	if len(msg) < 12 || !bytes.Equal(msg[:8], signature) {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[8:12])
}

// Challenge answers a NEGOTIATE message with a CHALLENGE message.
func (s *Server) Challenge(negotiate []byte) ([]byte, *Pending, error) {
	if messageType(negotiate) != typeNegotiate || len(negotiate) < 16 {
		return nil, nil, ErrBadMessage
	}
	requested := binary.LittleEndian.Uint32(negotiate[12:16])
	p := &Pending{server: s, negotiate: append([]byte(nil), negotiate...)}
	if _, err := rand.Read(p.challenge[:]); err != nil {
		return nil, nil, err
	}
	// Only flags the client asked for are echoed, as Windows does, and
	// never LM_KEY: the server speaks NTLMv2 alone. A client that does not
	// ask for KEY_EXCH (go-ntlmssp refuses a challenge that carries it)
	// does not get it.
	flags := uint32(flagUnicode | flagRequestTarget | flagNTLM | flagTargetTypeServer | flagTargetInfo | flagVersion)
	flags |= requested & (flagAlwaysSign | flagExtendedSession | flag128 | flag56 | flagSign | flagSeal | flagKeyExch)

	name := utf16le(strings.ToUpper(s.Computer))
	var info bytes.Buffer
	writeAV := func(id uint16, v []byte) {
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	writeAV(avNbDomainName, name)
	writeAV(avNbComputerName, name)
	writeAV(avDNSDomainName, utf16le(strings.ToLower(s.Computer)))
	writeAV(avDNSComputerName, utf16le(strings.ToLower(s.Computer)))
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, fileTime(s.now()))
	writeAV(avTimestamp, ts)
	writeAV(avEOL, nil)

	const headerLen = 56
	var m bytes.Buffer
	m.Write(signature)
	_ = binary.Write(&m, binary.LittleEndian, uint32(typeChallenge))
	writeField(&m, len(name), headerLen)
	_ = binary.Write(&m, binary.LittleEndian, flags)
	m.Write(p.challenge[:])
	m.Write(make([]byte, 8))
	writeField(&m, info.Len(), headerLen+len(name))
	// Version: 10.0 build 17763 (Windows Server 2019), NTLM revision 15.
	m.Write([]byte{10, 0, 0x63, 0x45, 0, 0, 0, 15})
	m.Write(name)
	m.Write(info.Bytes())
	p.message = m.Bytes()
	return p.message, p, nil
}

// Verified is what a successful AUTHENTICATE message proved.
type Verified struct {
	User   string
	Domain string
	// ChannelBindings is the MD5 of the client's channel binding token, nil
	// when the client sent none or an all-zero one.
	ChannelBindings []byte
	// Session signs and seals the messages of this context; nil when the
	// client negotiated neither.
	Session *Session
}

// Authenticate verifies an AUTHENTICATE message against the pending
// challenge. Only NTLMv2 responses are accepted: NTLMv1 and LM are broken
// and no client gsd cares about sends them.
func (p *Pending) Authenticate(msg []byte) (*Verified, error) {
	if messageType(msg) != typeAuthenticate || len(msg) < 64 {
		return nil, ErrBadMessage
	}
	flags := binary.LittleEndian.Uint32(msg[60:64])
	nt, err := field(msg, 20)
	if err != nil {
		return nil, err
	}
	domainRaw, err := field(msg, 28)
	if err != nil {
		return nil, err
	}
	userRaw, err := field(msg, 36)
	if err != nil {
		return nil, err
	}
	decode := func(b []byte) (string, error) {
		if flags&flagUnicode == 0 {
			return string(b), nil
		}
		return fromUTF16LE(b)
	}
	user, err := decode(userRaw)
	if err != nil {
		return nil, err
	}
	domain, err := decode(domainRaw)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, ErrDenied // anonymous
	}
	// An NTLMv2 response is a 16-byte proof followed by a blob of at least
	// 28 bytes (header, timestamp, client challenge, reserved).
	if len(nt) < 16+28 {
		return nil, fmt.Errorf("%w: not an NTLMv2 response", ErrDenied)
	}
	account, found := p.server.account(stripDomain(user))
	if !found {
		return nil, ErrDenied
	}
	proof, blob := nt[:16], nt[16:]
	var responseKey []byte
	// The NTLMv2 hash covers the domain the client put in the message;
	// some clients send a domain but compute with none, so both are tried.
	for _, d := range []string{domain, ""} {
		key := ntowfv2(account.Password, stripDomain(user), d)
		want := hmacMD5(key, p.challenge[:], blob)
		if subtle.ConstantTimeCompare(want, proof) == 1 {
			responseKey = key
			break
		}
	}
	if responseKey == nil {
		return nil, ErrDenied
	}
	// NTLMv2: the key exchange key is the session base key; with
	// KEY_EXCH the client chose the session key and sent it encrypted
	// under it.
	exported := hmacMD5(responseKey, proof)
	if flags&flagKeyExch != 0 {
		enc, err := field(msg, 52)
		if err != nil {
			return nil, err
		}
		if len(enc) != 16 {
			return nil, fmt.Errorf("%w: KEY_EXCH without a 16-byte session key", ErrBadMessage)
		}
		c, _ := rc4.NewCipher(exported)
		exported = make([]byte, 16)
		c.XORKeyStream(exported, enc)
	}
	pairs := blob[28:]
	if f := avPair(pairs, avFlags); len(f) == 4 && binary.LittleEndian.Uint32(f)&avFlagMIC != 0 {
		if !p.micOK(msg, exported) {
			return nil, fmt.Errorf("%w: the MIC does not match", ErrDenied)
		}
	}
	v := &Verified{User: user, Domain: domain}
	if cb := avPair(pairs, avChannelBindings); len(cb) == 16 && !bytes.Equal(cb, make([]byte, 16)) {
		v.ChannelBindings = cb
	}
	if flags&(flagSign|flagSeal) != 0 {
		v.Session = newSession(flags, exported)
	}
	return v, nil
}

// micOK checks the AUTHENTICATE message's MIC: an HMAC under the session
// key over all three messages, which stops a relay from dropping flags
// or channel bindings on the way. The MIC follows the 8-byte Version.
func (p *Pending) micOK(msg, key []byte) bool {
	const micAt = 72
	if len(msg) < micAt+16 {
		return false
	}
	zeroed := append([]byte(nil), msg...)
	clear(zeroed[micAt : micAt+16])
	want := hmacMD5(key, p.negotiate, p.message, zeroed)
	return subtle.ConstantTimeCompare(want, msg[micAt:micAt+16]) == 1
}

func (s *Server) account(user string) (Account, bool) {
	for _, a := range s.Accounts {
		if strings.EqualFold(user, a.User) {
			return a, true
		}
	}
	return Account{}, false
}

// TLSChannelBindings returns the MD5 of the gss_channel_bindings_struct a
// client derives from the server's certificate hash ("tls-server-end-point",
// RFC 5929), which is what an NTLMv2 MsvAvChannelBindings pair carries.
func TLSChannelBindings(certHash []byte) []byte {
	app := append([]byte("tls-server-end-point:"), certHash...)
	var b bytes.Buffer
	b.Write(make([]byte, 16)) // initiator and acceptor: type 0, no address
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(app)))
	b.Write(app)
	sum := md5.Sum(b.Bytes())
	return sum[:]
}

func stripDomain(user string) string {
	if i := strings.LastIndex(user, `\`); i >= 0 {
		return user[i+1:]
	}
	return user
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func ntowfv2(password, user, domain string) []byte {
	h := md4.New()
	h.Write(utf16le(password))
	return hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(user)+domain))
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func field(msg []byte, at int) ([]byte, error) {
	if len(msg) < at+8 {
		return nil, ErrBadMessage
	}
	n := int(binary.LittleEndian.Uint16(msg[at:]))
	off := int(binary.LittleEndian.Uint32(msg[at+4:]))
	if n == 0 {
		return nil, nil
	}
	if off < 0 || off > len(msg) || n > len(msg)-off {
		return nil, ErrBadMessage
	}
	return msg[off : off+n], nil
}

func writeField(b *bytes.Buffer, n, off int) {
	_ = binary.Write(b, binary.LittleEndian, uint16(n))
	_ = binary.Write(b, binary.LittleEndian, uint16(n))
	_ = binary.Write(b, binary.LittleEndian, uint32(off))
}

func avPair(pairs []byte, id uint16) []byte {
	for len(pairs) >= 4 {
		k := binary.LittleEndian.Uint16(pairs)
		n := int(binary.LittleEndian.Uint16(pairs[2:]))
		if k == avEOL || 4+n > len(pairs) {
			return nil
		}
		if k == id {
			return pairs[4 : 4+n]
		}
		pairs = pairs[4+n:]
	}
	return nil
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func fromUTF16LE(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", ErrBadMessage
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}

// fileTime converts t to a Windows FILETIME (100 ns ticks since 1601).
func fileTime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + 116444736000000000
}
