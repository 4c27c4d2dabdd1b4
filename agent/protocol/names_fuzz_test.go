package protocol

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidateNames checks the promises the agent relies on when it joins
// a client's name to one of its own directories: an accepted file name is
// a single plain component, and an accepted relative path never leaves the
// directory and consists of accepted file names.
func FuzzValidateNames(f *testing.F) {
	for _, s := range []string{"api.exe", "conf/app.yaml", `conf\app.yaml`, "..", "../x", "CON", "con.txt",
		"x.exe:ads", "trail.", "trail ", `C:\x`, `\\?\C:\x`, "a//b", "COM¹", "a\x00b", "ａ", "...", ". .", "CONIN$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateFileName(s) == nil {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\:\x00") {
				t.Fatalf("ValidateFileName accepted %q", s)
			}
			if strings.HasSuffix(s, ".") || strings.HasSuffix(s, " ") {
				t.Fatalf("ValidateFileName accepted a trailing dot or space: %q", s)
			}
		}
		if ValidateRelPath(s) == nil {
			norm := strings.ReplaceAll(s, `\`, "/")
			for _, part := range strings.Split(norm, "/") {
				if err := ValidateFileName(part); err != nil {
					t.Fatalf("ValidateRelPath accepted %q whose component %q is refused: %v", s, part, err)
				}
			}
			base := filepath.Join("base", "dir")
			joined := filepath.Join(base, filepath.FromSlash(norm))
			if rel, err := filepath.Rel(base, joined); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
				t.Fatalf("ValidateRelPath accepted %q, which resolves to %q outside %q", s, joined, base)
			}
		}
		if ValidateServiceName(s) == nil && strings.ContainsAny(s, "/\\\x00") {
			t.Fatalf("ValidateServiceName accepted %q", s)
		}
		if ValidateSHA256(s) == nil && (len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "") {
			t.Fatalf("ValidateSHA256 accepted %q", s)
		}
	})
}

// FuzzDecodeArgs feeds arbitrary args to the per-op decoder: it must never
// panic, and what it accepts must survive a round trip unchanged (so no
// field is silently half-read).
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{
		`{"sha256":"00","size":3,"name":"a.exe"}`,
		`{"sha256":"00","size":3,"name":"a.exe","bogus":1}`,
		`{"size":"3"}`, `{"size":-1}`, `{"size":1e30}`, `null`, `[]`, `{}`, `{"name":"a","mode":"wrapped","env":{"A":"b"},"env_sha256":{"A":"00"}}`,
		`{"service":"api","purge":true,"timeout_ms":5}`, `{"pid":1,"since":"2026-01-01T00:00:00Z"}`, `{"kind":"service","name":"api","release":"r1","effect":"restart"}`,
		`{"kind":"service","name":"api","spec":{"name":"api"},"secrets":{"env.A":"b"}}`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &StageArgs{} },
		func() any { return &ServiceSpec{} },
		func() any { return &ServiceRef{} },
		func() any { return &BreakLockArgs{} },
		func() any { return &ActivateArgs{} },
		func() any { return &StageReleaseArgs{} },
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the line decoder refuses it before DecodeArgs runs
		}
		for _, newTarget := range targets {
			v := newTarget()
			if DecodeArgs(Request{Op: "x", Args: raw}, v) != nil {
				continue
			}
			again := newTarget()
			if err := DecodeArgs(Request{Op: "x", Args: MustArgs(v)}, again); err != nil {
				t.Fatalf("%T: accepted %s but not its own re-encoding: %v", v, raw, err)
			}
			// Compared as encodings: omitempty turns an empty map into
			// an absent one, which means the same.
			if a, b := string(MustArgs(v)), string(MustArgs(again)); a != b {
				t.Fatalf("%T: %s decodes to %s, its re-encoding to %s", v, raw, a, b)
			}
		}
	})
}
