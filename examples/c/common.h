/*
 * common.h: small helpers shared by the LwMQ C samples (not part of the
 * API). Each sample includes <api-lwmq-time.h> and <api-lwmq-messaging.h>
 * itself, first, as LwMQ programs do; this file holds what a Windows sample
 * would take from Windows instead (the system time as a FILETIME) and what
 * lets one source build as C11 and C++20, with and without -fshort-wchar.
 */
#ifndef LWMQ_SAMPLE_COMMON_H
#define LWMQ_SAMPLE_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <api-lwmq-time.h>
#include <api-lwmq-messaging.h>

/* Prints the failed call and the library's reason, then exits. */
#define CHECK(call)                                                            \
  do {                                                                         \
    HRESULT hr_ = (call);                                                      \
    if (FAILED(hr_)) {                                                         \
      fprintf(stderr, "%s failed: 0x%08x: %s\n", #call, (unsigned)hr_,         \
              LmqGetLastErrorMessage());                                       \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* A descriptor literal: L"..." where wchar_t is 2 bytes (Windows, or
 * -fshort-wchar: what a ported program writes, unchanged), u"..." where it
 * is 4 bytes. */
#if defined(__SIZEOF_WCHAR_T__) && __SIZEOF_WCHAR_T__ == 2
#define SAMPLE_TEXT(s) L##s
#else
#define SAMPLE_TEXT(s) u##s
#endif

/* An ASCII command-line argument as a PCWSTR (enough for the samples'
 * addresses; the ...A functions take any UTF-8). */
static inline PCWSTR SampleWide(const char *s) {
  static WCHAR buf[512];
  size_t i = 0;
  for (; s[i] && i + 1 < sizeof buf / sizeof buf[0]; i++)
    buf[i] = (WCHAR)(unsigned char)s[i];
  buf[i] = 0;
  return buf;
}

/* The precise system time as a FILETIME (the Linux stand-in for Windows'
 * GetSystemTimePreciseAsFileTime): NT time, 100 ns ticks since 1601. */
static inline void SampleGetSystemTimePreciseAsFileTime(FILETIME *Now) {
  struct timespec ts;
  ULONG64 t;
  clock_gettime(CLOCK_REALTIME, &ts);
  t = 116444736000000000ULL + (ULONG64)ts.tv_sec * 10000000ULL + (ULONG64)ts.tv_nsec / 100;
  Now->dwLowDateTime = (DWORD)t;
  Now->dwHighDateTime = (DWORD)(t >> 32);
}

/* An NT timestamp (a frame's, or one carried in a raw buffer) as a FILETIME. */
static inline FILETIME SampleFileTime(ULONG64 Stamp) {
  FILETIME t;
  t.dwLowDateTime = (DWORD)Stamp;
  t.dwHighDateTime = (DWORD)(Stamp >> 32);
  return t;
}

/* Microseconds from an NT timestamp to now (LmqTimeElapsed gives ns). */
static inline double SampleLatencyUs(ULONG64 Stamp) {
  FILETIME then = SampleFileTime(Stamp), now;
  SampleGetSystemTimePreciseAsFileTime(&now);
  return (double)LmqTimeElapsed(&then, &now) / 1000.0;
}

#endif
