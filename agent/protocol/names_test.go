package protocol

import (
	"errors"
	"testing"
)

func TestValidateRelPath(t *testing.T) {
	good := []string{"config.yaml", "conf/app.yaml", `conf\app.yaml`, "a.b.c", "console.log", "nul_file", "COM10"}
	for _, p := range good {
		if err := ValidateRelPath(p); err != nil {
			t.Errorf("ValidateRelPath(%q) = %v, want nil", p, err)
		}
	}
	bad := []string{
		"", "..", "../x", `a\..\..\x`, "a/../b", ".",
		"/etc/passwd", `\windows\x`, `C:\x`, "C:x", `\\server\share\x`, `\\?\C:\x`,
		"file.txt:stream", "file.txt::$DATA",
		"CON", "con.txt", "NUL", "nul.tar.gz", "COM1", "LPT1", "aux", "PRN.log", "CONIN$", "COM1 .txt",
		"trail.", "trail ", "dir./x", "dir /x",
		"a//b", "a/", `a/\b`, `a\/b`, "a\x00b", "a|b", "a*b", "a?b", `a"b`, "a<b",
	}
	for _, p := range bad {
		err := ValidateRelPath(p)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateRelPath(%q) = %v, want ErrInvalidName", p, err)
		}
	}
}

func TestValidateServiceName(t *testing.T) {
	for _, n := range []string{"api", "gsd-test.1", "Orders_API"} {
		if err := ValidateServiceName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", "..", "a/b", "CON", "nul", "-x", "a b", "a:b", "x."} {
		if err := ValidateServiceName(n); err == nil {
			t.Errorf("%q: accepted", n)
		}
	}
}

func TestServiceSpecRedactedDropsPassword(t *testing.T) {
	s := ServiceSpec{Name: "api", Account: Account{Name: `CORP\svc`, Password: "hunter2"}}
	r := s.Redacted()
	if r.Account.Password != "" || r.Account.Name != `CORP\svc` {
		t.Fatalf("got %+v", r.Account)
	}
	if s.Account.Password != "hunter2" {
		t.Fatal("Redacted changed its receiver")
	}
}
