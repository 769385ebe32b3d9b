/*
 * common.h: small helpers shared by the LwMQ C samples (not part of the API).
 */
#ifndef LWMQ_SAMPLE_COMMON_H
#define LWMQ_SAMPLE_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwmq.h"

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

/* Converts an ASCII/UTF-8 descriptor to UTF-16 (ASCII only: enough for the
 * samples; use the ...A functions for UTF-8 in general). */
static inline const char16_t *sample_utf16(const char *s) {
  static char16_t buf[512];
  size_t i = 0;
  for (; s[i] && i + 1 < sizeof buf / sizeof buf[0]; i++)
    buf[i] = (char16_t)(unsigned char)s[i];
  buf[i] = 0;
  return buf;
}

/* The current time as NT time (100 ns ticks since 1601-01-01 UTC), the
 * unit of frame timestamps. */
static inline UINT64 sample_nt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return 116444736000000000ULL + (UINT64)ts.tv_sec * 10000000ULL +
         (UINT64)ts.tv_nsec / 100;
}

/* Microseconds between an NT timestamp and now (negative clocks clamp to 0). */
static inline double sample_latency_us(UINT64 stamp) {
  UINT64 now = sample_nt_now();
  return now > stamp ? (double)(now - stamp) / 10.0 : 0.0;
}

static inline double sample_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
