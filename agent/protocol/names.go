package protocol

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidName marks names refused by ValidateName and friends.
var ErrInvalidName = errors.New("invalid name")

// Windows device names that open a device instead of a file in any directory
// and with any extension ("nul.txt" is NUL).
var reservedNames = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true,
	"COM0": true, "COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT0": true, "LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
	"COM¹": true, "COM²": true, "COM³": true, "LPT¹": true, "LPT²": true, "LPT³": true,
}

// ValidateRelPath checks a managed file name: a relative path of one or more
// segments separated by / or \, each a plain Windows file name. It refuses
// anything that could escape the service directory or reach something other
// than a regular file: "..", absolute and drive paths, UNC and device paths,
// alternate data streams, reserved device names, and names Windows would
// silently alter (trailing dots or spaces).
func ValidateRelPath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty path", ErrInvalidName)
	}
	if len(p) > 240 {
		return fmt.Errorf("%w: %q is longer than 240 characters", ErrInvalidName, p)
	}
	if p[0] == '/' || p[0] == '\\' {
		return fmt.Errorf("%w: %q is absolute", ErrInvalidName, p)
	}
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if err := ValidateFileName(seg); err != nil {
			return fmt.Errorf("%w (in %q)", err, p)
		}
	}
	// Mixed separators count too: `a/\b` is `a\b` to Windows, and would be
	// a second state key for it.
	if norm := strings.ReplaceAll(p, `\`, "/"); strings.Contains(norm, "//") || strings.HasSuffix(norm, "/") {
		return fmt.Errorf("%w: %q has an empty segment", ErrInvalidName, p)
	}
	return nil
}

// ValidateFileName checks one path segment.
func ValidateFileName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty file name", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q refers to a directory", ErrInvalidName, name)
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("%w: %q has a colon (drive or alternate data stream)", ErrInvalidName, name)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return fmt.Errorf("%w: %q ends in a dot or space, which Windows strips", ErrInvalidName, name)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`<>"|?*/\`, r) {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidName, name, r)
		}
	}
	base := strings.ToUpper(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	if reservedNames[base] {
		return fmt.Errorf("%w: %q is a reserved device name", ErrInvalidName, name)
	}
	return nil
}

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$`)

// ValidateServiceName checks a service name. It is stricter than the SCM:
// the name also becomes a directory under the agent's root.
func ValidateServiceName(name string) error {
	if !serviceNameRE.MatchString(name) {
		return fmt.Errorf("%w: service name %q must be 1-80 letters, digits, '_', '.', '-', starting with a letter or digit", ErrInvalidName, name)
	}
	return ValidateFileName(name)
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidateSHA256 checks a lower-case hex SHA-256, which also names a
// directory in the artifact store.
func ValidateSHA256(s string) error {
	if !sha256RE.MatchString(s) {
		return fmt.Errorf("%w: %q is not a lower-case hex SHA-256", ErrInvalidName, s)
	}
	return nil
}

// ValidateWindowsPath checks an absolute Windows path on a local drive,
// such as C:\ProgramData\app\config.yaml: a drive letter, then plain file
// names (see ValidateFileName). UNC and device paths are refused.
func ValidateWindowsPath(p string) error {
	if len(p) < 4 || !(p[0] >= 'A' && p[0] <= 'Z' || p[0] >= 'a' && p[0] <= 'z') || p[1] != ':' || p[2] != '\\' {
		return fmt.Errorf("%w: %q is not an absolute path on a drive, such as C:\\data\\app", ErrInvalidName, p)
	}
	if len(p) > 260 {
		return fmt.Errorf("%w: %q is longer than 260 characters", ErrInvalidName, p)
	}
	for _, seg := range strings.Split(p[3:], `\`) {
		if err := ValidateFileName(seg); err != nil {
			return fmt.Errorf("%w (in %q)", err, p)
		}
	}
	return nil
}
