/*
 * A stand-in bcryptprimitives.dll for Wine before 8.13, which lacks it.
 *
 * Rust's standard library (1.78 and later) takes its random numbers from
 * bcryptprimitives!ProcessPrng; without it procwatch.exe cannot start under
 * those Wine versions. This exports only ProcessPrng and fills the buffer
 * with RtlGenRandom (advapi32!SystemFunction036). No C runtime: the entry
 * point is DllMain itself. Built by ci/wine.sh into the Wine prefix only,
 * never into procwatch.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        /* RtlGenRandom takes a ULONG length. */
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
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
