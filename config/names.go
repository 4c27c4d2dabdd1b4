package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// validIdentifier checks a block label that is used in references such as
// service.api, so it must be an HCL identifier.
func validIdentifier(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > 80:
		return errors.New("is longer than 80 characters")
	case !hclsyntax.ValidIdentifier(name) || strings.Contains(name, ".."):
		return errors.New("must start with a letter or underscore and hold only letters, digits, underscores and dashes")
	}
	return nil
}

// validServiceName checks a Windows service name as the SCM accepts it:
// at most 256 characters, no slashes or backslashes, no control
// characters.
func validServiceName(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > 256:
		return errors.New("is longer than 256 characters, the limit of the Windows service manager")
	case strings.ContainsAny(name, `/\`):
		return errors.New("contains a slash or backslash, which Windows service names may not")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	}
	return nil
}

// reservedFileNames are DOS device names Windows refuses as file names,
// with any extension.
var reservedFileNames = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
}

// validFileName checks one component of a Windows path.
func validFileName(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case name == "." || name == "..":
		return fmt.Errorf("%q refers to a directory, not a file", name)
	case len(name) > 255:
		return errors.New("is longer than 255 characters")
	case strings.ContainsAny(name, `<>:"/\|?*`):
		return errors.New(`contains one of < > : " / \ | ? *, which Windows file names may not (":" would also name an alternate data stream)`)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return errors.New("ends with a dot or space, which Windows silently drops")
	}
	base := strings.ToUpper(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if reservedFileNames[strings.TrimRight(base, " ")] {
		return fmt.Errorf("is the reserved device name %s", base)
	}
	return nil
}

// validWindowsPath checks an absolute Windows path such as
// C:\ProgramData\api\config.yaml.
func validWindowsPath(p string) error {
	if len(p) < 3 || !isDriveLetter(p[0]) || p[1] != ':' || p[2] != '\\' {
		return errors.New(`must be an absolute Windows path such as C:\ProgramData\app\config.yaml`)
	}
	if len(p) > 260 {
		return errors.New("is longer than 260 characters")
	}
	for _, part := range strings.Split(p[3:], `\`) {
		if err := validFileName(part); err != nil {
			return fmt.Errorf("has a part %q that %s", part, err)
		}
	}
	return nil
}

func isDriveLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// Account kinds, as the agent needs to know them: built-in and virtual
// accounts and gMSAs have no password; users need one.
const (
	AccountBuiltin = "builtin"
	AccountVirtual = "virtual"
	AccountManaged = "managed" // group managed service account (name ends in $)
	AccountUser    = "user"
)

var builtinAccounts = map[string]string{
	"localsystem":                  "LocalSystem",
	"nt authority\\system":         "LocalSystem",
	".\\localsystem":               "LocalSystem",
	"localservice":                 "NT AUTHORITY\\LocalService",
	"nt authority\\localservice":   "NT AUTHORITY\\LocalService",
	"networkservice":               "NT AUTHORITY\\NetworkService",
	"nt authority\\networkservice": "NT AUTHORITY\\NetworkService",
}

// classifyAccount returns the canonical account name and its kind, or an
// error saying what is wrong with it. service is the service's own name,
// which a virtual account must match.
func classifyAccount(name, service string) (canonical, kind string, err error) {
	if c, ok := builtinAccounts[strings.ToLower(name)]; ok {
		return c, AccountBuiltin, nil
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.TrimSpace(name) != name || name == "" {
		return "", "", errors.New("is empty, has leading or trailing spaces, or holds a control character")
	}
	domain, user, hasDomain := strings.Cut(name, `\`)
	if !hasDomain {
		if u, d, ok := strings.Cut(name, "@"); ok {
			if err := checkAccountPart(u, "user"); err != nil {
				return "", "", err
			}
			if d == "" || strings.ContainsAny(d, `\/:*?"<>| @`) {
				return "", "", fmt.Errorf("has an invalid domain %q after @", d)
			}
			return name, kindOfUser(u), nil
		}
		return "", "", errors.New(`needs a domain: write DOMAIN\user, .\user for a local user, user@domain, or one of LocalSystem, LocalService, NetworkService`)
	}
	if strings.EqualFold(domain, "NT SERVICE") {
		if !strings.EqualFold(user, service) {
			return "", "", fmt.Errorf(`names the virtual account of service "%s"; a service can only run as its own virtual account, NT SERVICE\%s`, user, service)
		}
		return `NT SERVICE\` + service, AccountVirtual, nil
	}
	if strings.EqualFold(domain, "NT AUTHORITY") {
		return "", "", fmt.Errorf(`is not a service account; NT AUTHORITY offers SYSTEM, LocalService and NetworkService`)
	}
	if domain == "" || (domain != "." && strings.ContainsAny(domain, `/:*?"<>| .`)) {
		return "", "", fmt.Errorf("has an invalid domain %q", domain)
	}
	if err := checkAccountPart(user, "user"); err != nil {
		return "", "", err
	}
	return name, kindOfUser(user), nil
}

func kindOfUser(user string) string {
	if strings.HasSuffix(user, "$") {
		return AccountManaged
	}
	return AccountUser
}

func checkAccountPart(s, what string) error {
	switch {
	case s == "":
		return fmt.Errorf("has an empty %s name", what)
	case len(s) > 104:
		return fmt.Errorf("has a %s name longer than 104 characters", what)
	case strings.ContainsAny(s, `"/\[]:;|=,+*?<>@`):
		return fmt.Errorf(`has a %s name with one of " / \ [ ] : ; | = , + * ? < > @, which Windows account names may not`, what)
	}
	return nil
}
