package bootstrap

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf16"
)

// Exit codes of the script.
const (
	ExitOK = 0
	// ExitFailed: the file could not be written (reason on stderr).
	ExitFailed = 1
	// ExitHashMismatch: the bytes read did not have the expected SHA-256;
	// nothing was renamed into place.
	ExitHashMismatch = 3
)

// OKPrefix starts the line the script prints on success, followed by the
// lowercase hex SHA-256 of the file now in place.
const OKPrefix = "gsd-bootstrap: ok "

// NotePrefix starts the other lines the script prints: what it found wrong
// and put right (a root folder someone else owned, moved aside; a file
// with other bytes than it should have).
const NotePrefix = "gsd-bootstrap: "

// Exe is the program the bootstrap runs as.
const Exe = "powershell.exe"

// flags come before -EncodedCommand. -NonInteractive keeps PowerShell from
// waiting for a prompt answer; the script reads stdin itself as raw bytes,
// which is why it is passed encoded instead of through stdin.
var flags = []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand"}

// Params are the values substituted into the script.
type Params struct {
	// Root is the folder the script secures before it writes anything,
	// C:\ProgramData\gsd; Path must lie below it.
	Root string
	// Path is the absolute Windows path the file ends up at, such as
	// C:\ProgramData\gsd\bin\<sha256>\gsd-agent.exe.
	Path string
	// SHA256 is the lowercase hex digest the file must have.
	SHA256 string
}

// template is the script. @ROOT@, @PATH@ and @SHA256@ are replaced;
// everything else is fixed, which is what lets a receiver recognise it
// exactly.
//
// The contract: first the root. One that someone other than
// Administrators or SYSTEM owns (made before gsd, by a user who may have
// planted files in it) is moved aside whole and never used; then the root
// is created, or kept, owned by Administrators with only SYSTEM and
// Administrators allowed, protected from C:\ProgramData's permissive
// access list. Then the file: if it is there with the right SHA-256,
// stdin is read and dropped and nothing is written, so an empty stdin
// checks a file before it is run. Otherwise stdin is the file's raw bytes,
// to end of stream. They go to a temporary file beside the destination
// (never the destination itself), are hashed on the way, and only a
// matching hash renames the temporary file over the destination; any
// failure removes it.
const template = `$ErrorActionPreference = 'Stop'
$root = '@ROOT@'
$dest = '@PATH@'
$want = '@SHA256@'
$dir = [IO.Path]::GetDirectoryName($dest)
$tmp = Join-Path $dir ('.' + [IO.Path]::GetFileName($dest) + '.' + [Guid]::NewGuid().ToString('N') + '.partial')
$in = [Console]::OpenStandardInput()
$buf = New-Object byte[] 65536
try {
	$sddl = 'O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
	if ([IO.Directory]::Exists($root)) {
		$owner = 'unknown'
		try { $owner = [IO.Directory]::GetAccessControl($root, 'Owner').GetOwner([Security.Principal.SecurityIdentifier]).Value } catch { }
		if ($owner -ne 'S-1-5-32-544' -and $owner -ne 'S-1-5-18') {
			$aside = $root + '.untrusted-' + [Guid]::NewGuid().ToString('N')
			[IO.Directory]::Move($root, $aside)
			[Console]::Out.WriteLine("gsd-bootstrap: moved $root aside to $aside, unused: its owner $owner could have put anything in it")
		}
	}
	$acl = New-Object Security.AccessControl.DirectorySecurity
	$acl.SetSecurityDescriptorSddlForm($sddl, 'Owner, Access')
	if (-not [IO.Directory]::Exists($root)) {
		[void][IO.Directory]::CreateDirectory($root, $acl)
	} elseif (([IO.Directory]::GetAccessControl($root, 'Owner, Access').GetSecurityDescriptorSddlForm('Owner, Access') -replace 'D:PAI', 'D:P') -ne ($sddl -replace 'D:PAI', 'D:P')) {
		[IO.Directory]::SetAccessControl($root, $acl)
	}
	[void][IO.Directory]::CreateDirectory($dir)
	if ([IO.File]::Exists($dest)) {
		$f = [IO.File]::OpenRead($dest)
		try {
			$have = -join ([Security.Cryptography.SHA256]::Create().ComputeHash($f) | ForEach-Object { $_.ToString('x2') })
		} finally {
			$f.Dispose()
		}
		if ($have -eq $want) {
			while ($in.Read($buf, 0, $buf.Length) -gt 0) { }
			[Console]::Out.WriteLine("gsd-bootstrap: ok $want")
			exit 0
		}
		[Console]::Out.WriteLine("gsd-bootstrap: $dest had SHA-256 $have, not $want")
	}
	$sha = [Security.Cryptography.SHA256]::Create()
	$out = [IO.File]::Open($tmp, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None)
	try {
		while (($n = $in.Read($buf, 0, $buf.Length)) -gt 0) {
			[void]$sha.TransformBlock($buf, 0, $n, $null, 0)
			$out.Write($buf, 0, $n)
		}
		[void]$sha.TransformFinalBlock($buf, 0, 0)
		$out.Flush($true)
	} finally {
		$out.Dispose()
	}
	$got = -join ($sha.Hash | ForEach-Object { $_.ToString('x2') })
	if ($got -ne $want) {
		Remove-Item -LiteralPath $tmp -Force
		[Console]::Error.WriteLine("gsd-bootstrap: sha256 mismatch: want $want, got $got")
		exit 3
	}
	if (Test-Path -LiteralPath $dest) {
		[IO.File]::Replace($tmp, $dest, $null)
	} else {
		[IO.File]::Move($tmp, $dest)
	}
} catch {
	if (Test-Path -LiteralPath $tmp) { Remove-Item -LiteralPath $tmp -Force }
	[Console]::Error.WriteLine("gsd-bootstrap: " + $_)
	exit 1
}
[Console]::Out.WriteLine("gsd-bootstrap: ok $got")
exit 0
`

var (
	shaRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	pathRE = regexp.MustCompile(`^[A-Za-z]:\\[^\x00-\x1f"*?<>|]*$`)
	// scriptRE matches the template with its values captured, in the
	// order they appear: root, path, SHA-256. A path in a single-quoted
	// PowerShell string has each ' doubled.
	scriptRE = regexp.MustCompile(`^` + strings.NewReplacer(
		regexp.QuoteMeta("@ROOT@"), `((?:[^'\r\n]|'')*)`,
		regexp.QuoteMeta("@PATH@"), `((?:[^'\r\n]|'')*)`,
		regexp.QuoteMeta("@SHA256@"), `([0-9a-f]{64})`,
	).Replace(regexp.QuoteMeta(template)) + `$`)
)

// Validate checks p before it is put into a script.
func (p Params) Validate() error {
	if !shaRE.MatchString(p.SHA256) {
		return fmt.Errorf("bootstrap: %q is not a lowercase hex SHA-256", p.SHA256)
	}
	if !pathRE.MatchString(p.Path) || strings.HasSuffix(p.Path, `\`) {
		return fmt.Errorf("bootstrap: %q is not an absolute Windows file path", p.Path)
	}
	if !pathRE.MatchString(p.Root) || strings.HasSuffix(p.Root, `\`) || len(p.Root) < 4 {
		return fmt.Errorf("bootstrap: %q is not an absolute Windows folder below a drive's root", p.Root)
	}
	if !strings.HasPrefix(strings.ToLower(p.Path), strings.ToLower(p.Root)+`\`) {
		return fmt.Errorf("bootstrap: %q is not below the folder it secures, %q", p.Path, p.Root)
	}
	return nil
}

// Script returns the PowerShell source for p.
func Script(p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	quote := func(s string) string { return strings.ReplaceAll(s, "'", "''") }
	return strings.NewReplacer("@ROOT@", quote(p.Root), "@PATH@", quote(p.Path), "@SHA256@", p.SHA256).Replace(template), nil
}

// Args returns the arguments for Exe that run the script for p.
func Args(p Params) ([]string, error) {
	s, err := Script(p)
	if err != nil {
		return nil, err
	}
	return append(append([]string{}, flags...), encode(s)), nil
}

// CommandLine returns the whole command line: Exe followed by Args.
func CommandLine(p Params) (string, error) {
	args, err := Args(p)
	if err != nil {
		return "", err
	}
	return Exe + " " + strings.Join(args, " "), nil
}

// ErrNotBootstrap is returned by Parse for any other command line.
var ErrNotBootstrap = errors.New("bootstrap: not the gsd bootstrap command")

// Parse recognises a command line produced by CommandLine (the program
// may be named powershell or powershell.exe, in any case, with or without
// a directory) and returns its parameters.
func Parse(commandLine string) (Params, error) {
	fields := strings.Fields(commandLine)
	if len(fields) != 1+len(flags)+1 || !IsPowerShell(fields[0]) {
		return Params{}, ErrNotBootstrap
	}
	for i, f := range flags {
		if !strings.EqualFold(fields[1+i], f) {
			return Params{}, ErrNotBootstrap
		}
	}
	script, err := decode(fields[len(fields)-1])
	if err != nil {
		return Params{}, ErrNotBootstrap
	}
	m := scriptRE.FindStringSubmatch(script)
	if m == nil {
		return Params{}, ErrNotBootstrap
	}
	p := Params{Root: strings.ReplaceAll(m[1], "''", "'"), Path: strings.ReplaceAll(m[2], "''", "'"), SHA256: m[3]}
	if p.Validate() != nil {
		return Params{}, ErrNotBootstrap
	}
	return p, nil
}

// IsPowerShell reports whether the program token names Windows PowerShell
// or PowerShell 7.
func IsPowerShell(program string) bool {
	program = strings.Trim(program, `"`)
	if i := strings.LastIndexAny(program, `\/`); i >= 0 {
		program = program[i+1:]
	}
	switch strings.ToLower(program) {
	case "powershell", "powershell.exe", "pwsh", "pwsh.exe":
		return true
	}
	return false
}

// encode is PowerShell's -EncodedCommand form: base64 of UTF-16LE.
func encode(s string) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%2 != 0 {
		return "", ErrNotBootstrap
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}
