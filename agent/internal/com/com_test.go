package com

import (
	"errors"
	"testing"

	ole "github.com/go-ole/go-ole"
)

func TestError(t *testing.T) {
	err := Error("ITaskFolder.GetTask(x)", ole.NewError(0x80070002))
	if err.Error() != "ITaskFolder.GetTask(x): 0x80070002 ERROR_FILE_NOT_FOUND" || Code(err) != 0x80070002 {
		t.Errorf("%v (0x%08X)", err, Code(err))
	}
	if err := Error("X", ole.NewError(0x80041234)); err.Error() != "X: 0x80041234" {
		t.Error(err)
	}
	if err := Error("X", errors.New("plain")); err.Error() != "X: plain" || Code(err) != 0 {
		t.Error(err)
	}
}
