/*
 * thr: throughput test over an LwMQ messaging channel.
 *
 *   thr recv ipc://localhost:5555 SIZE COUNT
 *   thr send ipc://localhost:5555 SIZE COUNT
 *
 * The receiver opens as SERVER, the sender as CLIENT (either may start
 * first). Handshake: the receiver posts "ready", the sender waits for it.
 * The sender then posts COUNT messages of SIZE bytes (each carrying its
 * sequence number in its first 8 bytes when SIZE >= 8), then one timing
 * message stamped with the precise system time; the receiver checks every
 * message (size, order), measures from the first message to the last,
 * prints the one-way latency of the timing message and posts "done" with
 * its count. Both print elapsed time, messages/s and Gbit/s.
 */
#include <api-lwmq-time.h>
#include <api-lwmq-messaging.h>

#include "common.h"

#define SEQ_BYTES 8

static LMQ_CHANNEL channel;
static LMQ_SENDQUEUE queue;

/* Seconds on the monotonic clock. */
static double Seconds(void) { return (double)LmqGetTickCountNs() / 1e9; }

static void post_bytes(const void *data, UINT64 size, UINT64 stamp) {
  LMQ_MESSAGE m = NULL;
  CHECK(LmqCreateMessage(1, &m));
  CHECK(LmqAppendFrame(m, data, size, stamp));
  CHECK(LmqPostMessage(queue, &m, INFINITE));
}

/* Receives a message; copies up to `cap` bytes of its first frame. */
static UINT64 receive(void *out, size_t cap, ULONG64 *stamp, USHORT *frames) {
  LMQ_MESSAGE m = NULL;
  const void *data;
  UINT64 size = 0;
  CHECK(LmqReceiveMessage(channel, INFINITE, frames, NULL, &m));
  CHECK(LmqGetFrameData(m, 0, &data, &size, stamp, NULL));
  memcpy(out, data, (size_t)(size < cap ? size : cap));
  CHECK(LmqDisposeReceivedMessage(&m));
  return size;
}

static void report(const char *side, UINT64 size, UINT64 count, double seconds) {
  double rate = seconds > 0 ? (double)count / seconds : 0;
  printf("%s: %llu messages of %llu B\n", side, (unsigned long long)count,
         (unsigned long long)size);
  printf("elapsed: %.6f s\n", seconds);
  printf("throughput: %.0f msg/s\n", rate);
  printf("bandwidth: %.3f Gbit/s\n", rate * (double)size * 8 / 1e9);
}

int main(int argc, char **argv) {
  int sending;
  UINT64 size, count, i, stamp = 0, seq;
  SIZE_T buffer_size;
  unsigned char *payload;
  char small[64];
  USHORT frames = 0;
  double t0, t1;

  if (argc != 5 || (strcmp(argv[1], "send") != 0 && strcmp(argv[1], "recv") != 0)) {
    fprintf(stderr, "usage: thr send|recv ipc://address[:port] SIZE COUNT\n");
    return 2;
  }
  sending = strcmp(argv[1], "send") == 0;
  size = strtoull(argv[3], NULL, 10);
  count = strtoull(argv[4], NULL, 10);
  if (size == 0 || count == 0) {
    fprintf(stderr, "thr: SIZE and COUNT must be at least 1\n");
    return 2;
  }
  /* Room for at least one message plus the encoding overhead; 1 MiB lets
   * small messages be clubbed many to a buffer. */
  buffer_size = size + 4096 > 1024 * 1024 ? size + 4096 : 1024 * 1024;
  payload = (unsigned char *)calloc(1, (size_t)size);
  if (payload == NULL)
    return 1;

  CHECK(LmqInitialize(LMQ_CURRENT_API_VERSION));
  CHECK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &channel));
  CHECK(LmqAddTransport(channel, SampleWide(argv[2]), buffer_size, 4, 4,
                        LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  /* Bounded: a sender faster than the receiver waits instead of queueing
   * COUNT messages in memory. */
  CHECK(LmqAddSendQueue(channel, LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST,
                        LMQ_SENDQUEUEPRIORITY_NORMAL, 4096, &queue));
  CHECK(LmqOpenChannel(channel, sending ? LMQ_CHANNELROLE_CLIENT : LMQ_CHANNELROLE_SERVER,
                       LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));

  if (sending) {
    receive(small, sizeof small, &stamp, &frames); /* "ready" */
    t0 = Seconds();
    for (i = 0; i < count; i++) {
      if (size >= SEQ_BYTES)
        memcpy(payload, &i, SEQ_BYTES);
      post_bytes(payload, size, LMQ_TIMESTAMP_NONE);
    }
    CHECK(LmqFlushChannel(channel, INFINITE));
    t1 = Seconds();
    post_bytes("timing", 6, LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE);
    report("sent", size, count, t1 - t0);
    memset(small, 0, sizeof small);
    receive(small, sizeof small - 1, &stamp, &frames); /* "done N" */
    printf("receiver: %s\n", small);
  } else {
    post_bytes("ready", 5, LMQ_TIMESTAMP_NONE);
    t0 = 0;
    for (i = 0; i < count; i++) {
      UINT64 got = receive(payload, size, &stamp, &frames);
      if (i == 0)
        t0 = Seconds();
      if (got != size || frames != 1) {
        fprintf(stderr, "thr: message %llu has %llu B in %lu frames, expected %llu B in 1\n",
                (unsigned long long)i, (unsigned long long)got, (unsigned long)frames,
                (unsigned long long)size);
        return 1;
      }
      if (size >= SEQ_BYTES) {
        memcpy(&seq, payload, SEQ_BYTES);
        if (seq != i) {
          fprintf(stderr, "thr: message %llu carries sequence %llu\n",
                  (unsigned long long)i, (unsigned long long)seq);
          return 1;
        }
      }
    }
    t1 = Seconds();
    receive(small, sizeof small, &stamp, &frames); /* the timing message */
    report("received", size, count, t1 - t0);
    printf("latency: %.2f us (one way, timing message)\n", SampleLatencyUs(stamp));
    snprintf(small, sizeof small, "done %llu", (unsigned long long)count);
    post_bytes(small, strlen(small), LMQ_TIMESTAMP_NONE);
    CHECK(LmqFlushChannel(channel, INFINITE));
  }

  CHECK(LmqCloseChannel(channel, 1000));
  CHECK(LmqDestroyChannel(&channel));
  CHECK(LmqTerminate());
  free(payload);
  return 0;
}
