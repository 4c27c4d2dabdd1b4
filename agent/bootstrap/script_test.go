package bootstrap

import (
	"strings"
	"testing"
)

const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestRoundTrip(t *testing.T) {
	for _, p := range []Params{
		{Root: `C:\ProgramData\gsd`, Path: `C:\ProgramData\gsd\bin\` + sum + `\gsd-agent.exe`, SHA256: sum},
		{Root: `D:\it's`, Path: `D:\it's\here\a.exe`, SHA256: sum},
	} {
		line, err := CommandLine(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(line) > 8191 {
			t.Errorf("command line is %d characters, over cmd.exe's 8191", len(line))
		}
		got, err := Parse(line)
		if err != nil || got != p {
			t.Fatalf("Parse(CommandLine(%+v)) = %+v, %v", p, got, err)
		}
		// The program name may be spelled differently.
		alt := `C:\Windows\System32\WindowsPowerShell\v1.0\PowerShell` + strings.TrimPrefix(line, "powershell.exe")
		if got, err := Parse(alt); err != nil || got != p {
			t.Errorf("Parse with a full program path = %+v, %v", got, err)
		}
	}
}

func TestParseRejectsOtherPowerShell(t *testing.T) {
	good, _ := Script(Params{Root: `C:\gsd`, Path: `C:\gsd\a.exe`, SHA256: sum})
	for name, line := range map[string]string{
		"plain":        "powershell.exe -Command Get-Process",
		"other script": Exe + " " + strings.Join(flags, " ") + " " + encode("Write-Host hi"),
		"edited":       Exe + " " + strings.Join(flags, " ") + " " + encode(strings.Replace(good, "exit 3", "exit 0", 1)),
		"extra arg":    Exe + " -Foo " + strings.Join(flags, " ") + " " + encode(good),
		"not base64":   Exe + " " + strings.Join(flags, " ") + " !!!",
		"cmd":          "cmd.exe /c echo hi",
	} {
		if _, err := Parse(line); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Params{
		{Root: `C:\gsd`, Path: `relative\a.exe`, SHA256: sum},
		{Root: `C:\gsd`, Path: `C:\gsd\dir\`, SHA256: sum},
		{Root: `C:\gsd`, Path: "C:\\gsd\\a\nb", SHA256: sum},
		{Root: `C:\gsd`, Path: `C:\gsd\a.exe`, SHA256: strings.ToUpper(sum)},
		{Root: `C:\gsd`, Path: `C:\gsd\a.exe`, SHA256: "abc"},
		{Root: `C:\gsd`, Path: `C:\other\a.exe`, SHA256: sum},
		{Root: `C:\gsd`, Path: `C:\gsdx\a.exe`, SHA256: sum},
		{Root: `C:`, Path: `C:\a.exe`, SHA256: sum},
		{Path: `C:\gsd\a.exe`, SHA256: sum},
	} {
		if _, err := Script(p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
