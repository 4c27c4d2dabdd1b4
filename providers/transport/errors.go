package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Kinds of failure, for errors.Is. Every error a transport returns wraps
// at most one of them; the message carries the details.
var (
	// ErrUnreachable: the address does not resolve, or nothing listens.
	ErrUnreachable = errors.New("host unreachable")
	// ErrTimeout: the host did not answer in time.
	ErrTimeout = errors.New("host did not answer in time")
	// ErrAuth: the host refused the credentials.
	ErrAuth = errors.New("authentication failed")
	// ErrTrust: the host's certificate or SSH host key is not trusted.
	ErrTrust = errors.New("host identity not trusted")
	// ErrBroken: an established connection broke.
	ErrBroken = errors.New("connection broke")
)

// kindError attaches a kind to a message without repeating the kind's
// text.
type kindError struct {
	kind error
	msg  string
	err  error
}

func (e *kindError) Error() string { return e.msg }

// Is reports the kind; Unwrap gives the cause.
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.err }

// Errorf returns an error of the given kind (one of the Err* values)
// whose message is the formatted text alone.
func Errorf(kind error, format string, args ...any) error {
	wrapped := fmt.Errorf(format, args...)
	return &kindError{kind: kind, msg: wrapped.Error(), err: errors.Unwrap(wrapped)}
}

// NetError phrases a dial or I/O error on addr so a user can act on it.
// service names what should listen there ("WinRM over HTTPS", "sshd"),
// timeout is how long gsd waited. Errors it does not recognise are
// returned with the address added.
func NetError(err error, addr, service string, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return Errorf(ErrUnreachable, "cannot resolve %q: no such host; check the host's address in the configuration", dnsErr.Name)
		}
		return Errorf(ErrUnreachable, "cannot resolve %q: %v; check the host's address and this machine's DNS settings", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return Errorf(ErrUnreachable, "connection refused by %s: nothing listens there; check that %s is running on the host and the port is right", addr, service)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Errorf(ErrUnreachable, "no route to %s: %v", addr, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return Errorf(ErrTimeout, "no answer from %s within %s", addr, timeout)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &kindError{kind: ErrBroken, msg: fmt.Sprintf("the connection to %s broke: %v", addr, err), err: err}
	}
	return fmt.Errorf("%s: %w", addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
