package ntlm

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"github.com/gsd-deploy/gsd/providers/winrm/sealed"
)

// SignatureSize is the length of an NTLM message signature.
const SignatureSize = 16

// Magic constants of [MS-NLMP] 3.4.5.2 and 3.4.5.3, NUL included.
var (
	clientSignMagic = []byte("session key to client-to-server signing key magic constant\x00")
	serverSignMagic = []byte("session key to server-to-client signing key magic constant\x00")
	clientSealMagic = []byte("session key to client-to-server sealing key magic constant\x00")
	serverSealMagic = []byte("session key to server-to-client sealing key magic constant\x00")
)

// ErrSignature reports a message whose signature or sequence number is
// not the one expected: tampered with, replayed, or from another context.
var ErrSignature = errors.New("ntlm: message signature does not verify")

// Session is the server's side of an established NTLM context with
// extended session security: it unseals what the client sealed and seals
// answers, each direction with its own keys, RC4 stream and sequence
// number ([MS-NLMP] 3.4). The context is connection-oriented, so the RC4
// streams run on from message to message; a Session serves one
// connection, one message at a time.
type Session struct {
	flags              uint32
	sendSign, recvSign []byte
	send, recv         *rc4.Cipher
	sendSeq, recvSeq   uint32
}

func newSession(flags uint32, exportedKey []byte) *Session {
	s := &Session{
		flags:    flags,
		sendSign: md5Of(exportedKey, serverSignMagic),
		recvSign: md5Of(exportedKey, clientSignMagic),
	}
	s.send, _ = rc4.NewCipher(sealKey(flags, exportedKey, serverSealMagic))
	s.recv, _ = rc4.NewCipher(sealKey(flags, exportedKey, clientSealMagic))
	return s
}

// Sealing reports whether the client negotiated confidentiality, which
// WinRM message encryption needs.
func (s *Session) Sealing() bool { return s.flags&flagSeal != 0 }

// sealKey is the RC4 key for one direction: the exported key cut to the
// negotiated strength, hashed with the direction's constant.
func sealKey(flags uint32, key, magic []byte) []byte {
	switch {
	case flags&flag128 != 0:
	case flags&flag56 != 0:
		key = key[:7]
	default:
		key = key[:5]
	}
	return md5Of(key, magic)
}

func md5Of(parts ...[]byte) []byte {
	h := md5.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// checksum is the first 8 bytes of HMAC-MD5(signing key, seq || msg),
// over the plain text ([MS-NLMP] 3.4.4.2).
func checksum(key []byte, seq uint32, msg []byte) []byte {
	var seqb [4]byte
	binary.LittleEndian.PutUint32(seqb[:], seq)
	m := hmac.New(md5.New, key)
	m.Write(seqb[:])
	m.Write(msg)
	return m.Sum(nil)[:8]
}

// signature completes MAC(): version 1, the checksum (encrypted with the
// direction's stream, after the message, when keys were exchanged), and
// the sequence number.
func (s *Session) signature(sum []byte, stream *rc4.Cipher, seq uint32) []byte {
	if s.flags&flagKeyExch != 0 {
		stream.XORKeyStream(sum, sum)
	}
	sig := make([]byte, SignatureSize)
	binary.LittleEndian.PutUint32(sig, 1)
	copy(sig[4:12], sum)
	binary.LittleEndian.PutUint32(sig[12:], seq)
	return sig
}

// Seal encrypts msg in place and returns its signature.
func (s *Session) Seal(msg []byte) []byte {
	sum := checksum(s.sendSign, s.sendSeq, msg)
	s.send.XORKeyStream(msg, msg)
	sig := s.signature(sum, s.send, s.sendSeq)
	s.sendSeq++
	return sig
}

// Unseal decrypts sealed in place and checks sig against it and the
// expected sequence number.
func (s *Session) Unseal(sealed, sig []byte) error {
	if len(sig) != SignatureSize || binary.LittleEndian.Uint32(sig) != 1 {
		return ErrSignature
	}
	s.recv.XORKeyStream(sealed, sealed)
	want := s.signature(checksum(s.recvSign, s.recvSeq, sealed), s.recv, s.recvSeq)
	if subtle.ConstantTimeCompare(want, sig) != 1 {
		return ErrSignature
	}
	s.recvSeq++
	return nil
}

// Frame and Open are Seal and Unseal on whole WinRM bodies, the shape the
// WinRM server uses for every mechanism's message protection (a Kerberos
// wrap token's header plays the signature's part).

// Frame seals msg (a copy; msg is not changed) into an encrypted body.
func (s *Session) Frame(msg []byte) ([]byte, error) {
	return sealed.Frame(msg, SignatureSize, func(b []byte) ([]byte, error) { return s.Seal(b), nil })
}

// Open unseals an encrypted body in place and returns the message.
func (s *Session) Open(body []byte) ([]byte, error) {
	sig, msg, err := sealed.Parse(body)
	if err != nil {
		return nil, err
	}
	if err := s.Unseal(msg, sig); err != nil {
		return nil, err
	}
	return msg, nil
}
