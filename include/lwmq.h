/*
 * lwmq.h: the whole LwMQ C API for Linux (liblwmq.so / liblwmq.a).
 *
 * Includes, in the order LwMQ programs include them, the two headers that
 * declare it: api-lwmq-time.h (clock functions) and api-lwmq-messaging.h
 * (channels, transports, messages). A program ported from Windows keeps
 * its own includes of those two; see docs/c-api.md.
 */
#ifndef LWMQ_H
#define LWMQ_H

#include "api-lwmq-time.h"
#include "api-lwmq-messaging.h"

#endif /* LWMQ_H */
