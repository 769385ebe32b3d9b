/*
 * api-lwmq-time.h: LwMQ's time functions, for Linux (liblwmq.so / liblwmq.a).
 *
 * LwMQ programs include this header first, then api-lwmq-messaging.h.
 * See docs/c-api.md.
 *
 * Maintained by hand; crates/liblwmq/tests/header.rs checks every
 * declaration against the library's Rust declarations.
 */
#ifndef API_LWMQ_TIME_H
#define API_LWMQ_TIME_H

#include "lwmq-windows-types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The monotonic clock in nanoseconds (CLOCK_MONOTONIC: since an arbitrary
 * start, never going back, unaffected by changes of the system time).
 */
UINT64 LmqGetTickCountNs(VOID);

/* Nanoseconds from Then to Now, two LmqGetTickCountNs readings (0 if Now is
 * before Then). */
UINT64 LmqTimeElapsedNs(const UINT64 Then, const UINT64 Now);

/* Nanoseconds since Then, an LmqGetTickCountNs reading. */
UINT64 LmqTimeElapsedNsSince(const UINT64 Then);

/*
 * Nanoseconds from Then to Now, two NT times such as frame timestamps
 * (LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE) and the current system time: the
 * one-way latency of a message. 0 if Now is before Then or either pointer
 * is NULL.
 */
UINT64 LmqTimeElapsed(const FILETIME *Then, const FILETIME *Now);

#ifdef __cplusplus
}
#endif

#endif /* API_LWMQ_TIME_H */
