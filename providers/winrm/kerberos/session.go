package kerberos

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Session is an established context's message protection: wrap tokens
// with confidentiality, in the header-and-data layout WinRM frames
// ([MS-WSMV] 2.2.9.1.2): the header is the signature, the data the
// sealed message. Frame and Open do the whole WinRM body; Wrap and Unwrap
// the token alone.
type Session struct {
	initiator bool
	seal      sealer

	mu      sync.Mutex
	sendSeq uint64
	recvSeq uint64
}

// sealer is one token format: RFC 4121 for AES, RFC 4757 for RC4-HMAC.
type sealer interface {
	headerSize(n int) int
	padding() int
	wrap(msg []byte, pad int, seq uint64) (header []byte, err error)
	unwrap(header, data []byte) (msg []byte, seq uint64, err error)
}

// keys holds what the AP exchange settled: the ticket's session key, the
// initiator's subkey (from the authenticator) and the acceptor's (from the
// AP-REP), either subkey possibly absent, and both sequence numbers.
type keys struct {
	session, initiator, acceptor types.EncryptionKey
	initSeq, accSeq              uint64
}

func newSession(initiator bool, k keys) (*Session, error) {
	base := k.initiator
	if base.KeyType == 0 {
		base = k.session
	}
	s := &Session{initiator: initiator}
	if initiator {
		s.sendSeq, s.recvSeq = k.initSeq, k.accSeq
	} else {
		s.sendSeq, s.recvSeq = k.accSeq, k.initSeq
	}
	switch base.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
		c, err := newCFX(initiator, base, k.acceptor)
		if err != nil {
			return nil, err
		}
		s.seal = c
	case etypeID.RC4_HMAC:
		// RFC 4757 contexts keep the initiator's key: MIT uses an
		// acceptor subkey of the same enctype only in DCE style, which
		// WinRM is not.
		s.seal = newRC4(initiator, base)
		s.sendSeq &= 0xffffffff
		s.recvSeq &= 0xffffffff
	default:
		return nil, fmt.Errorf("kerberos: encryption type %d cannot seal messages (AES or RC4-HMAC only)", base.KeyType)
	}
	return s, nil
}

// HeaderSize is the length of the header Wrap returns: 60 bytes for AES.
// RC4-HMAC headers grow with the message (their length field covers it);
// HeaderSize is then the size for messages up to 64 KiB, and Frame is
// the way to seal them.
func (s *Session) HeaderSize() int { return s.seal.headerSize(0xffff - 64) }

// Wrap seals msg in place and returns the token's header. RC4-HMAC
// tokens end in a byte of padding that msg has no room for: Frame seals
// those.
func (s *Session) Wrap(msg []byte) (header []byte, err error) {
	if s.seal.padding() != 0 {
		return nil, errors.New("kerberos: RC4-HMAC tokens carry padding after the message: seal them with Frame")
	}
	return s.wrap(msg, 0)
}

func (s *Session) wrap(msg []byte, pad int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.seal.wrap(msg, pad, s.sendSeq)
	if err != nil {
		return nil, err
	}
	s.sendSeq++
	if _, ok := s.seal.(*rc4Sealer); ok {
		s.sendSeq &= 0xffffffff
	}
	return h, nil
}

// Frame returns msg sealed in the multipart body WinRM sends
// (sealed.Frame's layout), with RC4-HMAC's padding byte after the data
// as MIT's gss_wrap_iov leaves it.
func (s *Session) Frame(msg []byte) ([]byte, error) {
	pad := s.seal.padding()
	if pad == 0 {
		return sealed.Frame(msg, s.seal.headerSize(len(msg)), s.Wrap)
	}
	var padded []byte
	body, err := sealed.Frame(msg, s.seal.headerSize(len(msg)+pad), func(b []byte) ([]byte, error) {
		padded = append(b[:len(b):len(b)], make([]byte, pad)...)
		h, err := s.wrap(padded, pad)
		copy(b, padded)
		return h, err
	})
	if err != nil {
		return nil, err
	}
	// The padding goes between the sealed message and the closing
	// boundary, where sealed.Parse looks for it.
	tail := len(body) - len(frameTail)
	if !bytes.Equal(body[tail:], []byte(frameTail)) {
		return nil, errors.New("kerberos: sealed.Frame ended in an unexpected way")
	}
	out := make([]byte, 0, len(body)+pad)
	out = append(append(out, body[:tail]...), padded[len(msg):]...)
	return append(out, frameTail...), nil
}

// frameTail is how sealed.Frame ends a body.
const frameTail = "--Encrypted Boundary--\r\n"

// Open parses a WinRM encrypted body and returns the message.
func (s *Session) Open(body []byte) ([]byte, error) {
	sig, data, err := sealed.Parse(body)
	if err != nil {
		return nil, err
	}
	return s.Unwrap(sig, data)
}

// Unwrap verifies and opens a sealed message (which may be longer than
// the plaintext it returns). Messages must arrive in the order sent.
func (s *Session) Unwrap(header, data []byte) ([]byte, error) {
	msg, seq, err := s.seal.unwrap(header, data)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.recvSeq {
		return nil, fmt.Errorf("kerberos: message %d arrived where %d was due (replayed, reordered or lost)", seq, s.recvSeq)
	}
	s.recvSeq++
	if _, ok := s.seal.(*rc4Sealer); ok {
		s.recvSeq &= 0xffffffff
	}
	return msg, nil
}
