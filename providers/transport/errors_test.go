package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNetError(t *testing.T) {
	for _, c := range []struct {
		err   error
		kind  error
		parts []string
	}{
		{&net.DNSError{Name: "web9.example.invalid", Err: "no such host", IsNotFound: true}, ErrUnreachable, []string{`cannot resolve "web9.example.invalid"`, "check the host's address"}},
		{&net.DNSError{Name: "web9", Err: "server misbehaving", IsTemporary: true}, ErrUnreachable, []string{"server misbehaving", "DNS settings"}},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ErrUnreachable, []string{"connection refused by 10.0.0.9:5986", "WinRM over HTTPS"}},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), ErrTimeout, []string{"no answer from 10.0.0.9:5986 within 1m0s"}},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, ErrBroken, []string{"connection to 10.0.0.9:5986 broke"}},
	} {
		err := NetError(c.err, "10.0.0.9:5986", "WinRM over HTTPS", time.Minute)
		if !errors.Is(err, c.kind) {
			t.Errorf("%v: kind of %q is not %v", c.err, err, c.kind)
		}
		for _, p := range c.parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%q does not mention %q", err, p)
			}
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &TailBuffer{Limit: 4}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if got := string(b.Bytes()); got != "defg" {
		t.Errorf("kept %q", got)
	}
}
