/*
 * raw_buffers_test.c: several direct buffers out at once on a raw channel,
 * from C.
 *
 *  - N buffers from LmqRawChannelGetBuffer at once, each its own struct;
 *    one more is refused at once (ERROR_INVALID_STATE);
 *  - sends go in the order obtained: another one first is E_INVALIDARG
 *    and the buffer stays the caller's;
 *  - LmqRawChannelDisposeBuffer takes a buffer from GetBuffer (never
 *    sent: the peer never sees it) as well as one from ReceiveBuffer;
 *  - N received buffers held at once, disposed in any order;
 *  - a GetBuffer(INFINITE), a ReceiveBuffer(INFINITE), a FlushChannel and
 *    a CloseChannel on four threads all finish within their timeouts (the
 *    former code deadlocked here), and the waiters return
 *    ERROR_OPERATION_ABORTED, the code of a closed messaging channel.
 *
 * Built and run by crates/liblwmq/tests/raw_buffers.rs (also under
 * valgrind). Exit status 0 when every check passed.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lwmq.h"

static int checks;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "raw_buffers_test.c:%d: ", __LINE__);                      \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n  last error: %s\n", LmqGetLastErrorMessage());         \
    exit(1);                                                                   \
  } while (0)

#define EXPECT_HR(code, call)                                                  \
  do {                                                                         \
    HRESULT hr_ = (call);                                                      \
    checks++;                                                                  \
    if (hr_ != (HRESULT)(code))                                                \
      FAIL("%s returned 0x%08x, expected %s (0x%08x)", #call,                  \
           (unsigned)hr_, #code, (unsigned)(HRESULT)(code));                   \
  } while (0)

#define OK(call) EXPECT_HR(S_OK, call)

#define EXPECT_ERR(code, text, call)                                           \
  do {                                                                         \
    EXPECT_HR(code, call);                                                     \
    if (strstr(LmqGetLastErrorMessage(), (text)) == NULL)                      \
      FAIL("%s: last error lacks \"%s\"", #call, (text));                      \
  } while (0)

#define EXPECT(cond)                                                           \
  do {                                                                         \
    checks++;                                                                  \
    if (!(cond))                                                               \
      FAIL("expected %s", #cond);                                              \
  } while (0)

#define TIMEOUT_HR HRESULT_FROM_WIN32(ERROR_TIMEOUT)
#define STATE_HR HRESULT_FROM_WIN32(ERROR_INVALID_STATE)
#define ABORTED_HR HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED)
#define WAIT_MS 20000
#define N 3

static char abuf[4][256];

/* A per-run address so that parallel runs never collide. */
static const char *addr(int slot, const char *name) {
  snprintf(abuf[slot], sizeof abuf[slot], "ipc://lwmq-capi-raw/%ld/%s",
           (long)getpid(), name);
  return abuf[slot];
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void put(LMQ_TRANSPORTBUFFER *b, const char *text) {
  size_t n = strlen(text);
  memcpy(b->Buffer, text, n);
  b->BufferSizeBytes = n;
}

static int holds(const LMQ_TRANSPORTBUFFER *b, const char *text) {
  size_t n = strlen(text);
  return b != NULL && b->BufferSizeBytes == n && memcmp(b->Buffer, text, n) == 0;
}

static void test_several_buffers(void) {
  LMQ_CHANNEL a = NULL, b = NULL;
  LMQ_TRANSPORT ta = NULL, tb = NULL;
  LMQ_TRANSPORTBUFFER *out[N + 1] = {NULL}, *in[N + 1] = {NULL};
  const char *address = addr(0, "several");
  int i;

  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &a));
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &b));
  OK(LmqAddTransportA(a, address, 4096, N, 0, LMQ_TRANSPORTCREATIONFLAGS_SEND, &ta));
  OK(LmqAddTransportA(b, address, 4096, 0, N, LMQ_TRANSPORTCREATIONFLAGS_RECEIVE, &tb));
  OK(LmqOpenChannel(a, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  OK(LmqOpenChannel(b, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));

  /* N buffers out at once, each its own struct over its own memory. */
  for (i = 0; i < N; i++) {
    OK(LmqRawChannelGetBuffer(ta, WAIT_MS, &out[i]));
    EXPECT(out[i] != NULL && out[i]->BufferSizeBytes == 4096);
  }
  EXPECT(out[0] != out[1] && out[1] != out[2] && out[0] != out[2]);
  EXPECT(out[0]->Buffer != out[1]->Buffer && out[1]->Buffer != out[2]->Buffer);
  /* One more is refused at once, even with an infinite timeout. */
  EXPECT_ERR(STATE_HR, "MaxPendingSendBuffers", LmqRawChannelGetBuffer(ta, INFINITE, &out[N]));
  EXPECT(out[N] == NULL);
  put(out[0], "zero");
  put(out[1], "one (never sent)");
  put(out[2], "two");

  /* Out of order: refused, the buffer stays the caller's. */
  EXPECT_ERR(E_INVALIDARG, "in the order obtained", LmqRawChannelSendBuffer(ta, &out[2], FALSE));
  EXPECT(out[2] != NULL && holds(out[2], "two"));
  /* The middle one is given back unsent (with erase). */
  OK(LmqRawChannelDisposeBuffer(ta, &out[1], TRUE));
  EXPECT(out[1] == NULL);
  EXPECT_ERR(E_POINTER, "*Buffer", LmqRawChannelDisposeBuffer(ta, &out[1], FALSE));
  OK(LmqRawChannelSendBuffer(ta, &out[0], FALSE));
  OK(LmqRawChannelSendBuffer(ta, &out[2], FALSE));
  EXPECT(out[0] == NULL && out[2] == NULL);

  /* Only the two sent ones arrive, in order. */
  OK(LmqRawChannelReceiveBuffer(tb, WAIT_MS, &in[0]));
  OK(LmqRawChannelReceiveBuffer(tb, WAIT_MS, &in[1]));
  EXPECT(holds(in[0], "zero") && holds(in[1], "two"));
  EXPECT(in[0] != in[1]);
  EXPECT_HR(TIMEOUT_HR, LmqRawChannelReceiveBuffer(tb, 200, &in[2]));
  EXPECT(in[2] == NULL);
  /* A received buffer is not the sender's to give back. */
  EXPECT_ERR(E_INVALIDARG, "not the buffer", LmqRawChannelDisposeBuffer(ta, &in[0], FALSE));
  OK(LmqRawChannelDisposeBuffer(tb, &in[1], FALSE));
  OK(LmqRawChannelDisposeBuffer(tb, &in[0], FALSE));

  /* N received buffers held at once, one more refused, disposed in any
   * order; the sender's flush ends only once all are back. */
  for (i = 0; i < N; i++) {
    char text[16];
    OK(LmqRawChannelGetBuffer(ta, WAIT_MS, &out[i]));
    snprintf(text, sizeof text, "round %d", i);
    put(out[i], text);
  }
  for (i = 0; i < N; i++)
    OK(LmqRawChannelSendBuffer(ta, &out[i], i == 1));
  for (i = 0; i < N; i++) {
    char text[16];
    OK(LmqRawChannelReceiveBuffer(tb, WAIT_MS, &in[i]));
    snprintf(text, sizeof text, "round %d", i);
    EXPECT(holds(in[i], text));
  }
  EXPECT_ERR(STATE_HR, "MaxPendingReceiveBuffers", LmqRawChannelReceiveBuffer(tb, WAIT_MS, &in[N]));
  OK(LmqRawChannelDisposeBuffer(tb, &in[2], FALSE));
  OK(LmqRawChannelDisposeBuffer(tb, &in[0], TRUE));
  EXPECT_HR(TIMEOUT_HR, LmqFlushChannel(a, 100)); /* in[1] still held */
  OK(LmqRawChannelDisposeBuffer(tb, &in[1], FALSE));
  OK(LmqFlushChannel(a, WAIT_MS));

  /* Buffers still out when the channel is destroyed are freed with it. */
  OK(LmqRawChannelGetBuffer(ta, WAIT_MS, &out[0]));
  OK(LmqCloseChannel(a, 0));
  OK(LmqCloseChannel(b, 0));
  OK(LmqDestroyChannel(&a));
  OK(LmqDestroyChannel(&b));
}

/* ---- four threads: get, receive, flush, close ---- */

struct call {
  LMQ_CHANNEL ch;
  LMQ_TRANSPORT t;
  HRESULT hr;
  double took;
};

static void *get_forever(void *arg) {
  struct call *c = (struct call *)arg;
  LMQ_TRANSPORTBUFFER *buf = NULL;
  double t0 = now_s();
  c->hr = LmqRawChannelGetBuffer(c->t, INFINITE, &buf);
  c->took = now_s() - t0;
  return NULL;
}

static void *receive_forever(void *arg) {
  struct call *c = (struct call *)arg;
  LMQ_TRANSPORTBUFFER *buf = NULL;
  double t0 = now_s();
  c->hr = LmqRawChannelReceiveBuffer(c->t, INFINITE, &buf);
  c->took = now_s() - t0;
  return NULL;
}

static void *flush_500ms(void *arg) {
  struct call *c = (struct call *)arg;
  double t0 = now_s();
  c->hr = LmqFlushChannel(c->ch, 500);
  c->took = now_s() - t0;
  return NULL;
}

static void *close_300ms(void *arg) {
  struct call *c = (struct call *)arg;
  double t0 = now_s();
  c->hr = LmqCloseChannel(c->ch, 300);
  c->took = now_s() - t0;
  return NULL;
}

static void test_get_flush_close_on_four_threads(void) {
  LMQ_CHANNEL ch = NULL;
  LMQ_TRANSPORT t = NULL;
  LMQ_TRANSPORTBUFFER *buf = NULL;
  struct call get, receive, flush, close;
  pthread_t tg, tr, tf, tc;
  double t0;

  /* A client with no server: its one staging buffer fills, so the next
   * GetBuffer waits (for a peer that never comes). */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &ch));
  OK(LmqAddTransportA(ch, addr(1, "nobody"), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &t));
  OK(LmqOpenChannel(ch, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  OK(LmqRawChannelGetBuffer(t, 0, &buf));
  put(buf, "staged");
  OK(LmqRawChannelSendBuffer(t, &buf, FALSE));
  EXPECT_HR(TIMEOUT_HR, LmqRawChannelGetBuffer(t, 50, &buf));

  get = (struct call){ch, t, S_OK, 0};
  receive = get;
  flush = get;
  close = get;
  t0 = now_s();
  EXPECT(pthread_create(&tg, NULL, get_forever, &get) == 0);
  EXPECT(pthread_create(&tr, NULL, receive_forever, &receive) == 0);
  sleep_ms(50); /* not needed for correctness: any order must end */
  EXPECT(pthread_create(&tf, NULL, flush_500ms, &flush) == 0);
  sleep_ms(50);
  EXPECT(pthread_create(&tc, NULL, close_300ms, &close) == 0);
  EXPECT(pthread_join(tc, NULL) == 0);
  EXPECT(pthread_join(tf, NULL) == 0);
  EXPECT(pthread_join(tg, NULL) == 0);
  EXPECT(pthread_join(tr, NULL) == 0);
  printf("get %.3f s 0x%08x, receive %.3f s 0x%08x, flush %.3f s 0x%08x, "
         "close %.3f s 0x%08x, all %.3f s\n",
         get.took, (unsigned)get.hr, receive.took, (unsigned)receive.hr,
         flush.took, (unsigned)flush.hr, close.took, (unsigned)close.hr,
         now_s() - t0);
  /* The staged buffer was never taken: the linger ends with a timeout. */
  EXPECT(close.hr == TIMEOUT_HR);
  /* The flush timed out, or saw the close first. */
  EXPECT(flush.hr == TIMEOUT_HR || flush.hr == ABORTED_HR);
  /* The waiters were woken by the close. */
  EXPECT(get.hr == ABORTED_HR);
  EXPECT(receive.hr == ABORTED_HR);
  /* Liveness only (generous: valgrind and a loaded machine): nothing
   * waited for long past its timeout or the close. */
  EXPECT(close.took < 10.0 && flush.took < 10.0);
  EXPECT(now_s() - t0 < 20.0);
  EXPECT_ERR(ABORTED_HR, "closed", LmqRawChannelGetBuffer(t, INFINITE, &buf));
  EXPECT_ERR(ABORTED_HR, "closed", LmqRawChannelReceiveBuffer(t, INFINITE, &buf));
  EXPECT_ERR(ABORTED_HR, "closed", LmqFlushChannel(ch, INFINITE));
  OK(LmqCloseChannel(ch, 0));
  OK(LmqDestroyChannel(&ch));
}

int main(void) {
  /* A deadlock fails the test instead of hanging it. */
  alarm(120);
  OK(LmqInitialize(LMQ_CURRENT_API_VERSION));
  test_several_buffers();
  test_get_flush_close_on_four_threads();
  OK(LmqTerminate());
  printf("raw_buffers_test: %d checks passed\n", checks);
  return 0;
}
