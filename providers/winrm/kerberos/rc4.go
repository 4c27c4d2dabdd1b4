package kerberos

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/types"
)

// RFC 4757 wrap tokens (RC4-HMAC), in RFC 1964's framing.
//
// After the GSS-API framing come TOK_ID, the signing and sealing
// algorithms, a filler, the encrypted sequence number, eight bytes of the
// checksum and the encrypted confounder: that is the header part. The
// data part is the encrypted message and its padding. MIT writes one
// byte of padding and counts data and padding in the framing's length
// (DCE style, as Windows uses among its own services, counts neither and
// pads nothing); Unwrap takes both.

const (
	rc4SignAlg   = 0x0011 // HMAC-MD5, written little-endian: 11 00
	rc4SealAlg   = 0x0010 // RC4: 10 00
	rc4Body      = 32     // TOK_ID .. confounder
	rc4WrapUsage = 13     // the checksum's salt for wrap tokens
)

type rc4Sealer struct {
	initiator bool
	// sign keys the checksum; seqBase and cryptBase are the keys the
	// per-message keys of the sequence number and the data derive from.
	sign, seqBase, cryptBase []byte
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func newRC4(initiator bool, k types.EncryptionKey) *rc4Sealer {
	local := make([]byte, len(k.KeyValue))
	for i, b := range k.KeyValue {
		local[i] = b ^ 0xf0
	}
	zero := make([]byte, 4)
	return &rc4Sealer{
		initiator: initiator,
		sign:      hmacMD5(k.KeyValue, []byte("signaturekey\x00")),
		seqBase:   hmacMD5(k.KeyValue, zero),
		cryptBase: hmacMD5(local, zero),
	}
}

func (r *rc4Sealer) headerSize(n int) int {
	inner := len(derKRB5) + rc4Body + n
	return gssHeaderSize(inner) + len(derKRB5) + rc4Body
}

func (r *rc4Sealer) padding() int { return 1 }

// checksum is the token's SGN_CKSUM over its first eight bytes, the
// confounder and the (padded) message, all in plaintext.
func (r *rc4Sealer) checksum(tok8, confounder, msg []byte) []byte {
	salt := binary.LittleEndian.AppendUint32(nil, rc4WrapUsage)
	h := md5.New()
	h.Write(salt)
	h.Write(tok8)
	h.Write(confounder)
	h.Write(msg)
	return hmacMD5(r.sign, h.Sum(nil))[:8]
}

// direction is the filler of the sequence number: zeros from the
// initiator, 0xff from the acceptor.
func direction(fromInitiator bool) []byte {
	if fromInitiator {
		return []byte{0, 0, 0, 0}
	}
	return []byte{0xff, 0xff, 0xff, 0xff}
}

func (r *rc4Sealer) wrap(msg []byte, pad int, seq uint64) ([]byte, error) {
	for i := len(msg) - pad; i < len(msg); i++ {
		msg[i] = byte(pad)
	}
	inner := len(derKRB5) + rc4Body + len(msg)
	header := make([]byte, 0, r.headerSize(len(msg)))
	header = derLength(append(header, 0x60), inner)
	header = append(header, derKRB5...)
	at := len(header)
	header = binary.BigEndian.AppendUint16(header, tokWrapRC4)
	header = binary.LittleEndian.AppendUint16(header, rc4SignAlg)
	header = binary.LittleEndian.AppendUint16(header, rc4SealAlg)
	header = append(header, 0xff, 0xff)
	header = header[:at+rc4Body]
	tok := header[at:]
	confounder := tok[24:32]
	if _, err := rand.Read(confounder); err != nil {
		return nil, err
	}
	cksum := r.checksum(tok[:8], confounder, msg)
	copy(tok[16:24], cksum)

	plainSeq := binary.BigEndian.AppendUint32(nil, uint32(seq))
	c, err := rc4.NewCipher(hmacMD5(r.cryptBase, plainSeq))
	if err != nil {
		return nil, err
	}
	c.XORKeyStream(confounder, confounder)
	c.XORKeyStream(msg, msg)

	plainSeq = append(plainSeq, direction(r.initiator)...)
	s, err := rc4.NewCipher(hmacMD5(r.seqBase, cksum))
	if err != nil {
		return nil, err
	}
	s.XORKeyStream(tok[8:16], plainSeq)
	return header, nil
}

func (r *rc4Sealer) unwrap(header, data []byte) ([]byte, uint64, error) {
	declared, oid, body, err := readGSSHeader(header)
	if err != nil {
		return nil, 0, err
	}
	if !bytes.Equal(oid, derKRB5) {
		return nil, 0, defective("wrap token of another mechanism")
	}
	if len(header) != body+rc4Body {
		return nil, 0, defective("RC4-HMAC wrap token header of %d bytes", len(header))
	}
	tok := header[body:]
	if binary.BigEndian.Uint16(tok) != tokWrapRC4 || binary.LittleEndian.Uint16(tok[2:]) != rc4SignAlg ||
		!bytes.Equal(tok[6:8], []byte{0xff, 0xff}) {
		return nil, 0, defective("not an RC4-HMAC wrap token")
	}
	if binary.LittleEndian.Uint16(tok[4:]) != rc4SealAlg {
		return nil, 0, defective("message not sealed")
	}
	var padded bool
	switch declared - len(oid) - rc4Body {
	case len(data):
		padded = true
	case 0:
	default:
		return nil, 0, defective("wrap token length %d for %d bytes of data", declared, len(data))
	}
	cksum := tok[16:24]
	s, err := rc4.NewCipher(hmacMD5(r.seqBase, cksum))
	if err != nil {
		return nil, 0, err
	}
	seqBytes := make([]byte, 8)
	s.XORKeyStream(seqBytes, tok[8:16])
	if !bytes.Equal(seqBytes[4:], direction(!r.initiator)) {
		return nil, 0, defective("token sent in the wrong direction")
	}
	c, err := rc4.NewCipher(hmacMD5(r.cryptBase, seqBytes[:4]))
	if err != nil {
		return nil, 0, err
	}
	confounder := make([]byte, 8)
	c.XORKeyStream(confounder, tok[24:32])
	plain := make([]byte, len(data))
	c.XORKeyStream(plain, data)
	if !hmac.Equal(r.checksum(tok[:8], confounder, plain), cksum) {
		return nil, 0, fmt.Errorf("kerberos: the message's checksum does not verify (tampered, or sealed with another key)")
	}
	if padded {
		if len(plain) == 0 {
			return nil, 0, defective("padded message without padding")
		}
		p := int(plain[len(plain)-1])
		if p < 1 || p > 8 || p > len(plain) {
			return nil, 0, defective("padding of %d bytes", p)
		}
		plain = plain[:len(plain)-p]
	}
	return plain, uint64(binary.BigEndian.Uint32(seqBytes)), nil
}
