//go:build windows

package eventlog

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// eventLogKey holds one key per event log, and under each a key per
// source registered in it.
const eventLogKey = `SYSTEM\CurrentControlSet\Services\EventLog`

// eventCreateMessages is the message file of sources registered as
// eventcreate.exe and kardianos/service register them: each message is
// its first insertion string.
const eventCreateMessages = `%SystemRoot%\System32\EventCreate.exe`

func hostSources() Sources { return registrySources{} }
func hostLogs() Logs       { return advapiLogs{} }

// registrySources keeps sources in the registry, as the event log
// service reads them.
type registrySources struct{}

func (registrySources) Lookup(source string) (string, error) {
	root, err := registry.OpenKey(registry.LOCAL_MACHINE, eventLogKey, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", eventLogKey, err)
	}
	defer root.Close()
	logs, err := root.ReadSubKeyNames(-1)
	if err != nil {
		return "", fmt.Errorf("listing event logs: %w", err)
	}
	for _, log := range logs {
		k, err := registry.OpenKey(root, log+`\`+source, registry.QUERY_VALUE)
		if err == nil {
			k.Close()
			return log, nil
		}
		if !errors.Is(err, registry.ErrNotExist) {
			return "", fmt.Errorf("reading source %s in log %s: %w", source, log, err)
		}
	}
	return "", nil
}

func (registrySources) Register(log, source string) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, eventLogKey+`\`+log+`\`+source, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.SetExpandStringValue("EventMessageFile", eventCreateMessages); err != nil {
		return err
	}
	const errorWarningInformation = 0x7
	return k.SetDWordValue("TypesSupported", errorWarningInformation)
}

func (registrySources) Remove(log, source string) error {
	err := registry.DeleteKey(registry.LOCAL_MACHINE, eventLogKey+`\`+log+`\`+source)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	return err
}

var (
	advapi32             = windows.NewLazySystemDLL("advapi32.dll")
	procOpenEventLog     = advapi32.NewProc("OpenEventLogW")
	procCloseEventLog    = advapi32.NewProc("CloseEventLog")
	procReadEventLog     = advapi32.NewProc("ReadEventLogW")
	procNumberOfRecords  = advapi32.NewProc("GetNumberOfEventLogRecords")
	procOldestEventLogRc = advapi32.NewProc("GetOldestEventLogRecord")
)

// ReadEventLog flags (winnt.h).
const (
	eventlogSeekRead      = 0x2
	eventlogForwardsRead  = 0x4
	eventlogBackwardsRead = 0x8
)

// advapiLogs reads classic event logs through advapi32.
type advapiLogs struct{}

func (advapiLogs) Open(log string) (LogReader, error) {
	if strings.ContainsRune(log, 0) {
		return nil, fmt.Errorf("bad log name %q", log)
	}
	name, _ := windows.UTF16PtrFromString(log)
	h, _, err := procOpenEventLog.Call(0, uintptr(unsafe.Pointer(name)))
	if h == 0 {
		return nil, fmt.Errorf("OpenEventLog(%s): %w", log, err)
	}
	return &advapiLog{h: h}, nil
}

type advapiLog struct{ h uintptr }

func (l *advapiLog) Range() (oldest, count uint32, err error) {
	if r, _, e := procOldestEventLogRc.Call(l.h, uintptr(unsafe.Pointer(&oldest))); r == 0 {
		return 0, 0, fmt.Errorf("GetOldestEventLogRecord: %w", e)
	}
	if r, _, e := procNumberOfRecords.Call(l.h, uintptr(unsafe.Pointer(&count))); r == 0 {
		return 0, 0, fmt.Errorf("GetNumberOfEventLogRecords: %w", e)
	}
	return oldest, count, nil
}

func (l *advapiLog) ReadAt(at uint32, backwards bool, buf []byte) (int, int, error) {
	flags := uint32(eventlogSeekRead | eventlogForwardsRead)
	if backwards {
		flags = eventlogSeekRead | eventlogBackwardsRead
	}
	var read, needed uint32
	r, _, e := procReadEventLog.Call(l.h, uintptr(flags), uintptr(at), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		uintptr(unsafe.Pointer(&read)), uintptr(unsafe.Pointer(&needed)))
	if r == 0 {
		switch e.(syscall.Errno) {
		case windows.ERROR_INSUFFICIENT_BUFFER:
			return 0, int(needed), ErrBufferTooSmall
		case windows.ERROR_HANDLE_EOF:
			return 0, 0, ErrEndOfLog
		}
		return 0, 0, fmt.Errorf("ReadEventLog: %w", e)
	}
	return int(read), 0, nil
}

func (l *advapiLog) Close() error {
	procCloseEventLog.Call(l.h)
	return nil
}
