package kerberos

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/common"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// RFC 4121 wrap tokens (AES128/256-CTS-HMAC-SHA1-96).
//
// The token is a 16-byte header followed by the encryption of
// confounder | message | EC filler bytes | a copy of the header, and the
// HMAC. WinRM carries it split: the header part holds the token header,
// the last RRC bytes of the encryption rotated to the front (the
// encrypted header copy and the HMAC) and the confounder; the data part
// is then exactly the ciphertext of the message, as MIT's gss_wrap_iov
// lays it out with header, data and padding buffers.

// Flags of the wrap token header (RFC 4121 section 4.2.2).
const (
	cfxSentByAcceptor = 0x01
	cfxSealed         = 0x02
	cfxAcceptorSubkey = 0x04
)

const (
	cfxHeader     = 16
	cfxConfounder = 16
	cfxHMAC       = 12
	// cfxRRC rotates the encrypted header copy and the HMAC into the
	// header part (EC is 0: AES-CTS needs no padding).
	cfxRRC = cfxHeader + cfxHMAC
)

// cfxKey is a key with its encryption and integrity keys derived for one
// key usage.
type cfxKey struct {
	et     etype.EType
	ke, ki []byte
}

func deriveCFX(k types.EncryptionKey, usage uint32) (cfxKey, error) {
	et, err := crypto.GetEtype(k.KeyType)
	if err != nil {
		return cfxKey{}, err
	}
	ke, err := et.DeriveKey(k.KeyValue, common.GetUsageKe(usage))
	if err != nil {
		return cfxKey{}, err
	}
	ki, err := et.DeriveKey(k.KeyValue, common.GetUsageKi(usage))
	if err != nil {
		return cfxKey{}, err
	}
	return cfxKey{et: et, ke: ke, ki: ki}, nil
}

func (k cfxKey) mac(plain []byte) []byte {
	h := hmac.New(sha1.New, k.ki)
	h.Write(plain)
	return h.Sum(nil)[:cfxHMAC]
}

type cfxSealer struct {
	initiator bool
	// send seals; recvInit and recvAcc open tokens sealed with the
	// initiator's and the acceptor's subkey (the latter only when the
	// acceptor sent one).
	send              cfxKey
	sendFlags         byte
	recvInit, recvAcc cfxKey
	haveAcc           bool
}

func newCFX(initiator bool, initKey, accKey types.EncryptionKey) (*cfxSealer, error) {
	sendUsage, recvUsage := uint32(keyusage.GSSAPI_ACCEPTOR_SEAL), uint32(keyusage.GSSAPI_INITIATOR_SEAL)
	if initiator {
		sendUsage, recvUsage = recvUsage, sendUsage
	}
	c := &cfxSealer{initiator: initiator, haveAcc: accKey.KeyType != 0}
	sendKey := initKey
	c.sendFlags = cfxSealed
	if !initiator {
		c.sendFlags |= cfxSentByAcceptor
	}
	if c.haveAcc {
		sendKey = accKey
		c.sendFlags |= cfxAcceptorSubkey
	}
	var err error
	if c.send, err = deriveCFX(sendKey, sendUsage); err != nil {
		return nil, err
	}
	if c.recvInit, err = deriveCFX(initKey, recvUsage); err != nil {
		return nil, err
	}
	if c.haveAcc {
		if c.recvAcc, err = deriveCFX(accKey, recvUsage); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cfxSealer) headerSize(int) int { return cfxHeader + cfxRRC + cfxConfounder }
func (c *cfxSealer) padding() int       { return 0 }

func (c *cfxSealer) wrap(msg []byte, _ int, seq uint64) ([]byte, error) {
	hdr := make([]byte, cfxHeader)
	binary.BigEndian.PutUint16(hdr, tokWrapCFX)
	hdr[2], hdr[3] = c.sendFlags, 0xff
	binary.BigEndian.PutUint64(hdr[8:], seq)

	n := len(msg)
	plain := make([]byte, 0, cfxConfounder+n+cfxHeader)
	plain = plain[:cfxConfounder]
	if _, err := rand.Read(plain); err != nil {
		return nil, err
	}
	plain = append(append(plain, msg...), hdr...)
	_, ct, err := c.send.et.EncryptData(c.send.ke, plain)
	if err != nil {
		return nil, fmt.Errorf("kerberos: seal: %w", err)
	}
	mac := c.send.mac(plain)

	binary.BigEndian.PutUint16(hdr[6:], cfxRRC)
	header := make([]byte, 0, c.headerSize(n))
	header = append(header, hdr...)
	header = append(header, ct[cfxConfounder+n:]...)
	header = append(header, mac...)
	header = append(header, ct[:cfxConfounder]...)
	copy(msg, ct[cfxConfounder:cfxConfounder+n])
	return header, nil
}

func (c *cfxSealer) unwrap(header, data []byte) ([]byte, uint64, error) {
	if len(header) < cfxHeader {
		return nil, 0, defective("wrap token header of %d bytes", len(header))
	}
	if binary.BigEndian.Uint16(header) != tokWrapCFX || header[3] != 0xff {
		return nil, 0, defective("not an RFC 4121 wrap token")
	}
	flags := header[2]
	if flags&cfxSealed == 0 {
		return nil, 0, defective("message not sealed")
	}
	if (flags&cfxSentByAcceptor != 0) != c.initiator {
		return nil, 0, defective("token sent in the wrong direction")
	}
	key := c.recvInit
	if flags&cfxAcceptorSubkey != 0 {
		if !c.haveAcc {
			return nil, 0, defective("token sealed with an acceptor subkey the context lacks")
		}
		key = c.recvAcc
	}
	ec := int(binary.BigEndian.Uint16(header[4:]))
	rrc := int(binary.BigEndian.Uint16(header[6:]))
	seq := binary.BigEndian.Uint64(header[8:])

	body := make([]byte, 0, len(header)-cfxHeader+len(data))
	body = append(append(body, header[cfxHeader:]...), data...)
	if len(body) < cfxConfounder+ec+cfxHeader+cfxHMAC {
		return nil, 0, defective("wrap token of %d bytes", len(body))
	}
	plain, err := c.open(key, body, rrc)
	if err != nil && ec != 0 {
		// Windows in DCE style rotates by RRC + EC while announcing RRC.
		plain, err = c.open(key, body, rrc+ec)
	}
	if err != nil {
		return nil, 0, err
	}
	copyAt := len(plain) - cfxHeader
	alt := plain[copyAt:]
	if binary.BigEndian.Uint16(alt) != tokWrapCFX || alt[2] != flags || alt[3] != 0xff ||
		binary.BigEndian.Uint64(alt[8:]) != seq {
		return nil, 0, fmt.Errorf("kerberos: the wrap token's header does not match its sealed copy")
	}
	return plain[cfxConfounder : copyAt-ec], seq, nil
}

// open undoes the rotation of body by rrc bytes, then decrypts and checks
// it.
func (c *cfxSealer) open(key cfxKey, body []byte, rrc int) ([]byte, error) {
	n := len(body)
	rrc %= n
	token := make([]byte, 0, n)
	token = append(append(token, body[rrc:]...), body[:rrc]...)
	ct, mac := token[:n-cfxHMAC], token[n-cfxHMAC:]
	plain, err := key.et.DecryptData(key.ke, ct)
	if err != nil {
		return nil, fmt.Errorf("kerberos: open: %w", err)
	}
	if !hmac.Equal(key.mac(plain), mac) {
		return nil, fmt.Errorf("kerberos: the message's checksum does not verify (tampered, or sealed with another key)")
	}
	return plain, nil
}
