/*
 * A stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks.
 *
 * Go 1.22 and later read random bytes through ProcessPrng and refuse to
 * start when the DLL cannot be loaded. RtlGenRandom (SystemFunction036 in
 * advapi32) is present in Wine and gives the same guarantee, so this shim
 * forwards to it. It is only ever installed into test WINEPREFIXes.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	/* RtlGenRandom takes a ULONG; feed it in pieces so a huge request
	 * is not silently truncated. */
	while (length > 0) {
		ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, chunk))
			return FALSE;
		data += chunk;
		length -= chunk;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
	(void)instance;
	(void)reason;
	(void)reserved;
	return TRUE;
}
