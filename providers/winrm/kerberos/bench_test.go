package kerberos

import (
	"bytes"
	"testing"
	"time"

	"github.com/bodgit/ntlmssp"
	"github.com/gsd-deploy/gsd/sandbox/ntlm"
)

// benchSize is the largest message gsd seals: a 512 KiB envelope.
const benchSize = 512 << 10

// BenchmarkSeal seals (client) and opens (server) one 512 KiB message
// per operation with Kerberos AES256, AES128 and RC4-HMAC, and with NTLM
// (gsd's bodgit/ntlmssp client to the sandbox's NTLM server), the way
// WinRM message encryption does. MB/s compare within one run.
func BenchmarkSeal(b *testing.B) {
	msg := bytes.Repeat([]byte("<rsp:Stream>AAAA</rsp:Stream>"), benchSize/29+1)[:benchSize]
	for _, et := range testEnctypes {
		b.Run("kerberos-"+et.name, func(b *testing.B) {
			c, s, _ := establish(b, et.id, InitOptions{})
			b.SetBytes(benchSize)
			for b.Loop() {
				body, err := c.Frame(msg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Open(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ntlm", func(b *testing.B) {
		client, server := ntlmPair(b)
		buf := make([]byte, benchSize)
		b.SetBytes(benchSize)
		for b.Loop() {
			copy(buf, msg)
			sealedMsg, sig, err := client.Wrap(buf)
			if err != nil {
				b.Fatal(err)
			}
			if err := server.Unseal(sealedMsg, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// ntlmPair runs an NTLM handshake in memory.
func ntlmPair(b *testing.B) (*ntlmssp.SecuritySession, *ntlm.Session) {
	srv := &ntlm.Server{Computer: "HOST", Accounts: []ntlm.Account{{User: "gsd", Password: "pw"}}, Now: time.Now}
	cl, err := ntlmssp.NewClient(ntlmssp.SetUserInfo("gsd", "pw"), ntlmssp.SetDomain("HOST"),
		ntlmssp.SetVersion(&ntlmssp.Version{ProductMajorVersion: 10, NTLMRevisionCurrent: ntlmssp.NTLMSSPRevisionW2K3}))
	if err != nil {
		b.Fatal(err)
	}
	neg, err := cl.Authenticate(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	chal, pending, err := srv.Challenge(neg)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := cl.Authenticate(chal, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := pending.Authenticate(auth)
	if err != nil {
		b.Fatal(err)
	}
	return cl.SecuritySession(), v.Session
}
