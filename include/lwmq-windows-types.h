/*
 * lwmq-windows-types.h: the Windows base types, structures, status codes
 * and macros the LwMQ API is written with, defined for Linux.
 *
 * Included by api-lwmq-time.h and api-lwmq-messaging.h; a program does not
 * need to include it itself.
 *
 * The definitions follow Windows (the LLP64 model), not <stdint.h>:
 *   - LONG, ULONG, DWORD, HRESULT and BOOL are 32-bit (Windows long is
 *     32-bit; Linux long is 64-bit, so they are int / unsigned int here);
 *   - UINT64, ULONG64, ULONGLONG, ULONG_PTR and SIZE_T are all
 *     unsigned long long, as on Win64, so that a SIZE_T* or a ULONGLONG*
 *     passes where the API declares PUINT64 or PULONG64 (uint64_t and
 *     size_t are unsigned long on Linux x86_64, another C++ type);
 *   - WCHAR (and PCWSTR, a null-terminated UTF-16 string) is wchar_t in
 *     C++ when wchar_t is 2 bytes (-fshort-wchar, as on Windows), so that
 *     L"ipc://..." literals pass unchanged; otherwise char16_t (write
 *     u"ipc://..."). In C it is unsigned short, which both u"..." and, with
 *     -fshort-wchar, L"..." are arrays of.
 *
 * Maintained by hand; crates/liblwmq/tests/header.rs checks every value and
 * structure layout here against the library's Rust declarations.
 */
#ifndef LWMQ_WINDOWS_TYPES_H
#define LWMQ_WINDOWS_TYPES_H

/* ---- base types ---- */

#ifndef VOID
#define VOID void
#endif

typedef unsigned char BYTE, *PBYTE;
typedef unsigned short USHORT, *PUSHORT;
typedef unsigned short WORD;
typedef int LONG;
typedef unsigned int ULONG, *PULONG;
typedef unsigned int DWORD;
typedef unsigned int UINT32;
typedef int BOOL;
typedef LONG HRESULT;
typedef unsigned long long UINT64, *PUINT64;
typedef unsigned long long ULONG64, *PULONG64;
typedef unsigned long long ULONGLONG;
typedef unsigned long long ULONG_PTR;
typedef unsigned long long SIZE_T;
typedef long long LONG_PTR;
typedef ULONG_PTR KAFFINITY;
typedef void *PVOID;
typedef const void *PCVOID;
typedef const void **PPCVOID;
typedef const char *PCSTR;

#if defined(__cplusplus) && defined(__SIZEOF_WCHAR_T__) && __SIZEOF_WCHAR_T__ == 2
typedef wchar_t WCHAR;
#elif defined(__cplusplus)
typedef char16_t WCHAR;
#else
typedef unsigned short WCHAR;
#endif
typedef const WCHAR *PCWSTR;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* ---- structures ---- */

/* An NT time (100 ns ticks since 1601-01-01 UTC) in two halves. */
typedef struct _FILETIME {
  DWORD dwLowDateTime;
  DWORD dwHighDateTime;
} FILETIME, *PFILETIME, *LPFILETIME;

/* A processor: Linux has one processor group, 0, holding CPUs 0..63. */
typedef struct _PROCESSOR_NUMBER {
  WORD Group;
  BYTE Number;
  BYTE Reserved;
} PROCESSOR_NUMBER, *PPROCESSOR_NUMBER;

/* A set of processors of one group: bit n of Mask is CPU n of group Group. */
typedef struct _GROUP_AFFINITY {
  KAFFINITY Mask;
  WORD Group;
  WORD Reserved[3];
} GROUP_AFFINITY, *PGROUP_AFFINITY;

/* ---- status codes ---- */

#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#define FACILITY_WIN32 7
#define HRESULT_FROM_WIN32(x)                                                  \
  ((HRESULT)(x) <= 0 ? ((HRESULT)(x))                                          \
                     : ((HRESULT)(((x) & 0x0000FFFF) | (FACILITY_WIN32 << 16) | \
                                  0x80000000)))

#define S_OK ((HRESULT)0)
#define S_FALSE ((HRESULT)1)
#define E_NOTIMPL ((HRESULT)0x80004001)
#define E_POINTER ((HRESULT)0x80004003)
#define E_FAIL ((HRESULT)0x80004005)
#define E_UNEXPECTED ((HRESULT)0x8000FFFF)
#define E_ACCESSDENIED ((HRESULT)0x80070005)
#define E_HANDLE ((HRESULT)0x80070006)
#define E_OUTOFMEMORY ((HRESULT)0x8007000E)
#define E_INVALIDARG ((HRESULT)0x80070057)

/* Win32 codes the library returns through HRESULT_FROM_WIN32. */
#define ERROR_NOT_SUPPORTED 50
#define ERROR_INSUFFICIENT_BUFFER 122
#define ERROR_BUSY 170
#define ERROR_ALREADY_EXISTS 183
#define ERROR_OPERATION_ABORTED 995
#define ERROR_NOT_FOUND 1168
#define ERROR_CONNECTION_ABORTED 1236
#define ERROR_TIMEOUT 1460
#define ERROR_INVALID_STATE 5023

/* ---- macros ---- */

/* Wait forever (timeouts are in milliseconds). */
#define INFINITE 0xFFFFFFFF

#ifndef MAKEWORD
#define MAKEWORD(low, high) ((WORD)(((BYTE)(low)) | ((WORD)((BYTE)(high))) << 8))
#endif

#endif /* LWMQ_WINDOWS_TYPES_H */
