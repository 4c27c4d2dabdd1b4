//go:build windows

package task

import (
	"errors"
	"fmt"
	"math"
	"syscall"
	"time"
	"unsafe"

	ole "github.com/go-ole/go-ole"
	"golang.org/x/sys/windows"

	"github.com/gsd-deploy/gsd/agent/internal/com"
	"github.com/gsd-deploy/gsd/agent/internal/wine"
)

// hostScheduler is the Task Scheduler, through ITaskService.
func hostScheduler() Scheduler { return comScheduler{onWine: wine.Detected()} }

// comScheduler drives the Task Scheduler 2.0 through its COM interfaces'
// vtables (taskschd.h). Not through IDispatch: Wine implements the
// interfaces but not their IDispatch (GetIDsOfNames is a stub), and the
// calls are the same on Windows.
type comScheduler struct{ onWine bool }

var (
	clsidTaskScheduler = ole.NewGUID("{0f87369f-a4e5-4cfc-bd3e-73e6154572dd}")
	iidITaskService    = ole.NewGUID("{2faba4c7-4da9-4013-9697-20cc3fd40f85}")
	procCoCreate       = windows.NewLazySystemDLL("ole32.dll").NewProc("CoCreateInstance")
)

// Methods by their place in each interface's vtable; the first seven are
// IUnknown's and IDispatch's.
const (
	release = 2

	serviceGetFolder = 7
	serviceConnect   = 10

	folderCreateFolder = 11
	folderGetTask      = 13
	folderDeleteTask   = 15
	folderRegisterTask = 16

	taskState          = 9
	taskLastRunTime    = 15
	taskLastTaskResult = 16
	taskNextRunTime    = 18
	taskXML            = 20
)

// HRESULTs the Task Scheduler answers with.
const (
	hrFileNotFound     = 0x80070002 // HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND): no such task
	hrPathNotFound     = 0x80070003 // no such folder
	hrAlreadyExists    = 0x800700B7 // the folder exists
	hrNotImplemented   = 0x80004001
	schedTaskHasNotRun = 0x00041303 // a success code: never ran
	taskCreateOrUpdate = 6
	clsctxInprocServer = 1
)

// comObject is a COM interface pointer: a pointer to its vtable.
type comObject struct{ vtbl *[32]uintptr }

// call invokes method n with args after the interface pointer. A failure
// HRESULT is an *ole.OleError; success codes (S_FALSE, SCHED_S_...)
// come back as hr.
func (o *comObject) call(n int, args ...uintptr) (uint32, error) {
	r, _, _ := syscall.SyscallN(o.vtbl[n], append([]uintptr{uintptr(unsafe.Pointer(o))}, args...)...)
	hr := uint32(r)
	if hr&0x80000000 != 0 {
		return hr, ole.NewError(uintptr(hr))
	}
	return hr, nil
}

func (o *comObject) Release() {
	if o != nil {
		o.call(release)
	}
}

type bstr struct{ p *int16 }

func newBSTR(s string) bstr             { return bstr{ole.SysAllocString(s)} }
func (b bstr) arg() uintptr             { return uintptr(unsafe.Pointer(b.p)) }
func (b bstr) free()                    { ole.SysFreeString(b.p) }
func variantArg(v *ole.VARIANT) uintptr { return uintptr(unsafe.Pointer(v)) }

// withFolder runs fn with gsd's task folder, made when missing, on a
// thread of its own with COM initialised.
func (c comScheduler) withFolder(create bool, fn func(folder *comObject) error) error {
	return c.wrap(com.Run(ole.COINIT_MULTITHREADED, func() error { return taskFolder(create, fn) }))
}

func taskFolder(create bool, fn func(folder *comObject) error) (err error) {
	var svc *comObject
	if r, _, _ := procCoCreate.Call(uintptr(unsafe.Pointer(clsidTaskScheduler)), 0, clsctxInprocServer,
		uintptr(unsafe.Pointer(iidITaskService)), uintptr(unsafe.Pointer(&svc))); r != 0 {
		return com.Error("CoCreateInstance(TaskScheduler)", ole.NewError(r))
	}
	defer svc.Release()
	empty := ole.VARIANT{VT: ole.VT_EMPTY}
	e := variantArg(&empty)
	if _, err := svc.call(serviceConnect, e, e, e, e); err != nil {
		return com.Error("ITaskService.Connect", err)
	}
	path := newBSTR(Folder)
	defer path.free()
	var folder *comObject
	_, err = svc.call(serviceGetFolder, path.arg(), uintptr(unsafe.Pointer(&folder)))
	if com.Code(err) == hrPathNotFound && create {
		root := newBSTR(`\`)
		defer root.free()
		var top *comObject
		if _, err := svc.call(serviceGetFolder, root.arg(), uintptr(unsafe.Pointer(&top))); err != nil {
			return com.Error("ITaskService.GetFolder(\\)", err)
		}
		defer top.Release()
		name := newBSTR(Folder[1:])
		defer name.free()
		if _, err := top.call(folderCreateFolder, name.arg(), e, uintptr(unsafe.Pointer(&folder))); err != nil && com.Code(err) != hrAlreadyExists {
			return com.Error(fmt.Sprintf("ITaskFolder.CreateFolder(%s)", Folder), err)
		}
		if folder == nil {
			_, err = svc.call(serviceGetFolder, path.arg(), uintptr(unsafe.Pointer(&folder)))
		} else {
			err = nil
		}
	}
	if com.Code(err) == hrPathNotFound {
		return errNoFolder
	}
	if err != nil {
		return com.Error(fmt.Sprintf("ITaskService.GetFolder(%s)", Folder), err)
	}
	defer folder.Release()
	return fn(folder)
}

var errNoFolder = errors.New("gsd's task folder does not exist")

// wrap marks failures of what Wine does not implement as ErrUnavailable.
func (c comScheduler) wrap(err error) error {
	if err != nil && c.onWine && com.Code(err) == hrNotImplemented {
		return fmt.Errorf("%w: Wine's Task Scheduler: %v", ErrUnavailable, err)
	}
	return err
}

func (c comScheduler) Register(name, xml string, p principal) error {
	return c.withFolder(true, func(folder *comObject) error {
		n, x := newBSTR(name), newBSTR(xml)
		defer n.free()
		defer x.free()
		user := ole.VARIANT{VT: ole.VT_EMPTY}
		if p.UserID != "" {
			u := newBSTR(p.UserID)
			defer u.free()
			user = ole.VARIANT{VT: ole.VT_BSTR, Val: int64(uintptr(unsafe.Pointer(u.p)))}
		}
		password := ole.VARIANT{VT: ole.VT_EMPTY}
		if p.Password != "" {
			pw := newBSTR(p.Password)
			defer pw.free()
			password = ole.VARIANT{VT: ole.VT_BSTR, Val: int64(uintptr(unsafe.Pointer(pw.p)))}
		}
		empty := ole.VARIANT{VT: ole.VT_EMPTY}
		var task *comObject
		if _, err := folder.call(folderRegisterTask, n.arg(), x.arg(), taskCreateOrUpdate, variantArg(&user), variantArg(&password),
			uintptr(p.LogonType), variantArg(&empty), uintptr(unsafe.Pointer(&task))); err != nil {
			return com.Error(fmt.Sprintf("ITaskFolder.RegisterTask(%s)", name), err)
		}
		task.Release()
		return nil
	})
}

func (c comScheduler) Get(name string) (Observed, bool, error) {
	var o Observed
	found := false
	err := c.withFolder(false, func(folder *comObject) error {
		n := newBSTR(name)
		defer n.free()
		var task *comObject
		_, err := folder.call(folderGetTask, n.arg(), uintptr(unsafe.Pointer(&task)))
		if com.Code(err) == hrFileNotFound {
			return nil
		}
		if err != nil {
			return com.Error(fmt.Sprintf("ITaskFolder.GetTask(%s)", name), err)
		}
		defer task.Release()
		found = true
		return read(task, &o)
	})
	if errors.Is(err, errNoFolder) {
		return o, false, nil
	}
	return o, found, err
}

var taskStates = map[int32]string{0: "unknown", 1: "disabled", 2: "queued", 3: "ready", 4: "running"}

// read fills o from a registered task. What the host does not implement
// goes to Unreadable; the definition must be readable.
func read(task *comObject, o *Observed) error {
	o.Unreadable = map[string]string{}
	var x *uint16
	if _, err := task.call(taskXML, uintptr(unsafe.Pointer(&x))); err != nil {
		return com.Error("IRegisteredTask.Xml", err)
	}
	o.XML = windows.UTF16PtrToString(x)
	ole.SysFreeString((*int16)(unsafe.Pointer(x)))
	var st int32
	if _, err := task.call(taskState, uintptr(unsafe.Pointer(&st))); err != nil {
		o.State, o.Unreadable["state"] = "unknown", com.Error("IRegisteredTask.State", err).Error()
	} else {
		o.State = taskStates[st]
	}
	var last float64
	hr, err := task.call(taskLastRunTime, uintptr(unsafe.Pointer(&last)))
	switch {
	case err != nil:
		o.Unreadable["last_run"] = com.Error("IRegisteredTask.LastRunTime", err).Error()
	case hr != schedTaskHasNotRun:
		o.LastRun = fromDate(last)
	}
	var result int32
	if _, err := task.call(taskLastTaskResult, uintptr(unsafe.Pointer(&result))); err != nil {
		o.Unreadable["last_result"] = com.Error("IRegisteredTask.LastTaskResult", err).Error()
	} else if !o.LastRun.IsZero() {
		r := uint32(result)
		o.LastResult = &r
	}
	var next float64
	if _, err := task.call(taskNextRunTime, uintptr(unsafe.Pointer(&next))); err != nil {
		o.Unreadable["next_run"] = com.Error("IRegisteredTask.NextRunTime", err).Error()
	} else if next != 0 {
		o.NextRun = fromDate(next)
	}
	if len(o.Unreadable) == 0 {
		o.Unreadable = nil
	}
	return nil
}

// fromDate converts an OLE automation date (days since 1899-12-30, in
// the host's local time) to a time.
func fromDate(d float64) time.Time {
	days, frac := math.Modf(d)
	base := time.Date(1899, 12, 30, 0, 0, 0, 0, time.Local)
	return base.AddDate(0, 0, int(days)).Add(time.Duration(math.Abs(frac) * 24 * float64(time.Hour)))
}

func (c comScheduler) Delete(name string) error {
	err := c.withFolder(false, func(folder *comObject) error {
		n := newBSTR(name)
		defer n.free()
		if _, err := folder.call(folderDeleteTask, n.arg(), 0); err != nil && com.Code(err) != hrFileNotFound {
			return com.Error(fmt.Sprintf("ITaskFolder.DeleteTask(%s)", name), err)
		}
		return nil
	})
	if errors.Is(err, errNoFolder) {
		return nil
	}
	return err
}
