package agent

import (
	"errors"
	"fmt"

	"github.com/gsd-deploy/gsd/agent/artifacts"
	"github.com/gsd-deploy/gsd/agent/protocol"
	"github.com/gsd-deploy/gsd/agent/state"
)

// opError carries the protocol error code a failure is reported with.
type opError struct {
	code string
	err  error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func failf(code, format string, args ...any) error {
	return &opError{code: code, err: fmt.Errorf(format, args...)}
}

// toProtocolError turns any failure into the error payload of an event.
func toProtocolError(err error) *protocol.Error {
	pe := &protocol.Error{Code: protocol.CodeFailed, Message: err.Error()}
	var oe *opError
	var locked *state.LockedError
	var de *protocol.DecodeError
	switch {
	case errors.As(err, &locked):
		pe.Code = protocol.CodeLocked
		h := locked.Holder
		pe.Holder = &h
	case errors.Is(err, state.ErrCorruptLock):
		pe.Code = protocol.CodeLocked // by an unknown holder
	case errors.As(err, &oe):
		pe.Code = oe.code
	case errors.As(err, &de):
		pe.Code = de.Code
	case errors.Is(err, protocol.ErrInvalidName):
		pe.Code = protocol.CodeInvalidName
	case errors.Is(err, artifacts.ErrHashMismatch):
		pe.Code = protocol.CodeHashMismatch
	case errors.Is(err, artifacts.ErrSizeMismatch):
		pe.Code = protocol.CodeSizeMismatch
	case errors.Is(err, ErrServiceNotInstalled):
		pe.Code = protocol.CodeNotFound
	}
	return pe
}
