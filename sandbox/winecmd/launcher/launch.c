/*
 * gsd sandbox launcher: starts one Windows command line exactly as given.
 *
 * Wine rebuilds a Windows command line from its Unix argv with C-runtime
 * quoting, which cmd.exe does not parse back the same way (cmd /c takes
 * the rest of the line raw). WinRS hands the server a raw command line, so
 * the sandbox passes it through the environment and this program gives it
 * to CreateProcessW untouched, with the inherited standard handles, then
 * exits with the child's exit code.
 */
#include <windows.h>
#include <stdio.h>

#define VAR L"GSD_SANDBOX_CMDLINE"

int wmain(void)
{
	static WCHAR line[32768];
	DWORD n = GetEnvironmentVariableW(VAR, line, sizeof line / sizeof line[0]);
	if (n == 0 || n >= sizeof line / sizeof line[0]) {
		fwprintf(stderr, L"gsd-sandbox-launch: %ls is not set\n", VAR);
		return 1;
	}
	SetEnvironmentVariableW(VAR, NULL);

	STARTUPINFOW si;
	ZeroMemory(&si, sizeof si);
	si.cb = sizeof si;
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
	si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
	si.hStdError = GetStdHandle(STD_ERROR_HANDLE);

	PROCESS_INFORMATION pi;
	if (!CreateProcessW(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
		DWORD err = GetLastError();
		fwprintf(stderr, L"gsd-sandbox-launch: cannot start %ls: error %lu\n", line, err);
		return (int)err;
	}
	CloseHandle(pi.hThread);
	WaitForSingleObject(pi.hProcess, INFINITE);
	DWORD code = 1;
	GetExitCodeProcess(pi.hProcess, &code);
	CloseHandle(pi.hProcess);
	return (int)code;
}
