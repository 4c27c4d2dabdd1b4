package com

import (
	"errors"
	"fmt"
	"runtime"

	ole "github.com/go-ole/go-ole"
)

// Run calls fn on a thread locked to it, with COM initialised in the
// given model (ole.COINIT_*) and uninitialised after.
func Run(model uint32, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// S_FALSE: this thread had COM already; it is released all the same.
	if err := ole.CoInitializeEx(0, model); err != nil && Code(err) != 1 {
		return Error("CoInitializeEx", err)
	}
	defer ole.CoUninitialize()
	return fn()
}

// names are HRESULTs these APIs answer with.
var names = map[uint32]string{
	0x80004001: "E_NOTIMPL",
	0x80070002: "ERROR_FILE_NOT_FOUND",
	0x80070003: "ERROR_PATH_NOT_FOUND",
	0x80070005: "E_ACCESSDENIED",
	0x80070057: "E_INVALIDARG",
	0x8007052E: "ERROR_LOGON_FAILURE",
	0x800700B7: "ERROR_ALREADY_EXISTS",
	0x80020009: "DISP_E_EXCEPTION",
	0x8002802B: "TYPE_E_ELEMENTNOTFOUND",
	0x80041317: "SCHED_E_UNEXPECTEDNODE",
	0x80041318: "SCHED_E_INVALIDVALUE",
	0x80041319: "SCHED_E_MISSINGNODE",
	0x8004131A: "SCHED_E_MALFORMEDXML",
}

// Code is the HRESULT of a failed COM call, or 0.
func Code(err error) uint32 {
	var oe *ole.OleError
	if errors.As(err, &oe) {
		return uint32(oe.Code())
	}
	return 0
}

// Error says which call failed with which HRESULT: "ITaskFolder.GetTask:
// 0x80070002 ERROR_FILE_NOT_FOUND".
func Error(call string, err error) error {
	code := Code(err)
	if code == 0 {
		return fmt.Errorf("%s: %w", call, err)
	}
	if name, ok := names[code]; ok {
		return &callError{fmt.Sprintf("%s: 0x%08X %s", call, code, name), err}
	}
	return &callError{fmt.Sprintf("%s: 0x%08X", call, code), err}
}

type callError struct {
	msg string
	err error
}

func (e *callError) Error() string { return e.msg }
func (e *callError) Unwrap() error { return e.err }
