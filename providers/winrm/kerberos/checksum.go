package kerberos

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"

	"github.com/jcmturner/gokrb5/v8/types"
)

// The authenticator checksum of a GSS-API context (RFC 4121 section
// 4.1.1): checksum type 0x8003 carrying the channel bindings' MD5 and the
// context flags.
const gssChecksumType = 0x8003

// Context flags of RFC 2744 that the checksum carries.
const (
	flagDeleg    = 0x01
	flagMutual   = 0x02
	flagReplay   = 0x04
	flagSequence = 0x08
	flagConf     = 0x10
	flagInteg    = 0x20
)

// ChannelBindingsHash is the MD5 of RFC 2744's gss_channel_bindings_struct
// holding appData (for TLS, "tls-server-end-point:" and the certificate's
// hash) and no addresses: what an authenticator's checksum carries and
// Accepted.ChannelBindings returns, so an acceptor compares the two.
func ChannelBindingsHash(appData []byte) []byte {
	// Initiator and acceptor address types and lengths, all zero, then
	// the application data's length and bytes, integers little-endian.
	b := make([]byte, 16, 20+len(appData))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(appData)))
	b = append(b, appData...)
	sum := md5.Sum(b)
	return sum[:]
}

func gssChecksum(channelBindings []byte, flags uint32) types.Checksum {
	b := binary.LittleEndian.AppendUint32(nil, 16)
	if channelBindings != nil {
		b = append(b, ChannelBindingsHash(channelBindings)...)
	} else {
		b = append(b, make([]byte, 16)...)
	}
	b = binary.LittleEndian.AppendUint32(b, flags)
	return types.Checksum{CksumType: gssChecksumType, Checksum: b}
}

// parseGSSChecksum returns the channel bindings hash (nil when all zero)
// and flags of an authenticator checksum.
func parseGSSChecksum(c types.Checksum) (bnd []byte, flags uint32, err error) {
	if c.CksumType != gssChecksumType {
		return nil, 0, defective("authenticator checksum of type %d, not a GSS-API one", c.CksumType)
	}
	b := c.Checksum
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 16 {
		return nil, 0, defective("GSS-API checksum of %d bytes", len(b))
	}
	flags = binary.LittleEndian.Uint32(b[20:])
	if bytes.Equal(b[4:20], make([]byte, 16)) {
		return nil, flags, nil
	}
	return append([]byte(nil), b[4:20]...), flags, nil
}
