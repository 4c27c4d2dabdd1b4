package config

import "testing"

func TestValidFileName(t *testing.T) {
	cases := map[string]bool{
		"config.yaml": true, "app.json": true, "a b.txt": true, "CONFIG": true, "console.log": true,
		"": false, ".": false, "..": false, "CON": false, "con.txt": false, "NUL": false, "com1.yaml": false,
		"LPT9.log": false, "a:b": false, "x/y": false, `x\y`: false, "name.": false, "name ": false,
		"tab\tname": false, "q?": false, "star*": false,
	}
	for name, ok := range cases {
		if err := validFileName(name); (err == nil) != ok {
			t.Errorf("validFileName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidWindowsPath(t *testing.T) {
	cases := map[string]bool{
		`C:\ProgramData\api\config.yaml`: true, `d:\x`: true,
		`C:ProgramData`: false, `\\server\share\x`: false, `C:\a\..\b`: false, `C:\a\CON`: false,
		`C:\a\b:ads`: false, `/etc/passwd`: false, `C:\a\\b`: false, `C:\dir.\x`: false,
	}
	for p, ok := range cases {
		if err := validWindowsPath(p); (err == nil) != ok {
			t.Errorf("validWindowsPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestClassifyAccount(t *testing.T) {
	cases := []struct {
		name, canonical, kind string
		bad                   bool
	}{
		{name: "LocalSystem", canonical: "LocalSystem", kind: AccountBuiltin},
		{name: "localservice", canonical: `NT AUTHORITY\LocalService`, kind: AccountBuiltin},
		{name: `NT AUTHORITY\NetworkService`, canonical: `NT AUTHORITY\NetworkService`, kind: AccountBuiltin},
		{name: `NT SERVICE\api`, canonical: `NT SERVICE\api`, kind: AccountVirtual},
		{name: `nt service\API`, canonical: `NT SERVICE\api`, kind: AccountVirtual},
		{name: `CORP\svc-api`, canonical: `CORP\svc-api`, kind: AccountUser},
		{name: `.\svc-api`, canonical: `.\svc-api`, kind: AccountUser},
		{name: `svc-api@corp.example.com`, canonical: `svc-api@corp.example.com`, kind: AccountUser},
		{name: `CORP\gmsa-api$`, canonical: `CORP\gmsa-api$`, kind: AccountManaged},
		{name: `NT SERVICE\db`, bad: true},
		{name: `NT AUTHORITY\Guest`, bad: true},
		{name: `svc-api`, bad: true},
		{name: `CORP\`, bad: true},
		{name: `\svc`, bad: true},
		{name: `CORP\a*b`, bad: true},
		{name: ` CORP\a`, bad: true},
		{name: `a@`, bad: true},
	}
	for _, tc := range cases {
		canonical, kind, err := classifyAccount(tc.name, "api")
		if tc.bad {
			if err == nil {
				t.Errorf("classifyAccount(%q) accepted, want an error", tc.name)
			}
			continue
		}
		if err != nil || canonical != tc.canonical || kind != tc.kind {
			t.Errorf("classifyAccount(%q) = %q, %q, %v; want %q, %q", tc.name, canonical, kind, err, tc.canonical, tc.kind)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"10MB": 10 << 20, "512KB": 512 << 10, "1GiB": 1 << 30, "4096B": 4096, "7 MiB": 7 << 20}
	for s, want := range good {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "10", "10mb", "1.5MB", "-1MB", "99999999999999999999GB", "2000GB"} {
		if _, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) accepted", s)
		}
	}
}

func TestValidAddress(t *testing.T) {
	cases := map[string]bool{
		"web1": true, "web1.example.internal": true, "10.1.2.3": true, "::1": true, "fe80::1": true,
		"": false, "http://web1": false, "web1:5986": false, "web 1": false, "-web": false, "a..b": false,
	}
	for a, ok := range cases {
		if err := validAddress(a); (err == nil) != ok {
			t.Errorf("validAddress(%q) = %v, want ok=%v", a, err, ok)
		}
	}
}
