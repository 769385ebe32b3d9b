/*
 * api_test.c: exercises every function of api-lwmq-messaging.h and its
 * documented error paths (NULL pointers, bad struct sizes, bad enumeration
 * values, invalid UTF-16, wrong/destroyed/forged handles, descriptor and
 * lifecycle rules with their messages), the implicit initialisation, the
 * channel and transport control codes (the peer access policy across two
 * users when run as root), the codes of a closed channel, and counts the
 * external-frame callbacks.
 *
 * Built and run by crates/liblwmq/tests/c_api.rs (also under valgrind).
 * Exit status 0 when every check passed; otherwise the failed check is
 * printed with the library's last error message.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_ISSET */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <api-lwmq-time.h>
#include <api-lwmq-messaging.h>

static int checks;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "api_test.c:%d: ", __LINE__);                              \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n  last error: %s\n", LmqGetLastErrorMessage());         \
    exit(1);                                                                   \
  } while (0)

/* The call must return exactly `code`. */
#define EXPECT_HR(code, call)                                                  \
  do {                                                                         \
    HRESULT hr_ = (call);                                                      \
    checks++;                                                                  \
    if (hr_ != (HRESULT)(code))                                                \
      FAIL("%s returned 0x%08x, expected %s (0x%08x)", #call,                  \
           (unsigned)hr_, #code, (unsigned)(HRESULT)(code));                   \
  } while (0)

#define OK(call) EXPECT_HR(S_OK, call)

/* The call must fail with `code` and a last error containing `text`. */
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
#define WAIT_MS 20000

/* ---- descriptors: UTF-16 built at run time from ASCII plus a suffix ---- */

static WCHAR wbuf[4][256];
static char abuf[4][256];

static const WCHAR *wide(int slot, const char *ascii) {
  size_t i = 0;
  for (; ascii[i] && i < 255; i++)
    wbuf[slot][i] = (WCHAR)(unsigned char)ascii[i];
  wbuf[slot][i] = 0;
  return wbuf[slot];
}

/* A per-run address so that parallel runs never collide. */
static const char *addr(int slot, const char *name) {
  snprintf(abuf[slot], sizeof abuf[slot], "ipc://lwmq-capi-test/%ld/%s",
           (long)getpid(), name);
  return abuf[slot];
}

/* ---- external-frame callbacks ---- */

struct counts {
  int acquire;
  int release;
  HRESULT acquire_result;
};

static HRESULT on_frame(LMQ_MESSAGECALLBACKREASON reason, const void *data,
                        UINT64 size, PVOID context) {
  struct counts *c = (struct counts *)context;
  (void)data;
  (void)size;
  if (reason == LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA) {
    c->acquire++;
    return c->acquire_result;
  }
  if (reason == LMQ_MESSAGECALLBACKREASON_RELEASE_DATA)
    c->release++;
  return S_OK;
}

static const char static_bytes[] = "static frame";

/* ---------------------------------------------------------------- tests */

static void test_init(void) {
  LMQ_CHANNEL ch = NULL;
  LMQ_MESSAGE m = NULL;
  /* Without LmqInitialize: everything works (LwMQ's samples never call it). */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqCreateMessage(LMQ_MESSAGEFRAMECOUNT_DEFAULT, &m));
  OK(LmqAppendFrame(m, "x", 1, LMQ_TIMESTAMP_NONE));
  OK(LmqDestroyUnpostedMessage(&m));
  OK(LmqDestroyChannel(&ch));
  EXPECT_ERR(STATE_HR, "without a matching", LmqTerminate());
  EXPECT_ERR(E_INVALIDARG, "version 2.0", LmqInitialize(MAKEWORD(2, 0)));
  /* Counted: two Initialize need two Terminate; the last one (in
   * test_terminate_releases) destroys what is left. */
  OK(LmqInitialize(LMQ_CURRENT_API_VERSION));
  OK(LmqInitialize(MAKEWORD(1, 0)));
  OK(LmqTerminate());
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch)); /* count 1: nothing destroyed */
  OK(LmqDestroyChannel(&ch));
  EXPECT(ch == NULL);
}

static void test_limits_and_descriptors(void) {
  LMQ_TRANSPORTBUFFERLIMITS l;
  USHORT inl = 0;
  unsigned char big[sizeof(LMQ_TRANSPORTBUFFERLIMITS) + 16];
  const WCHAR lone[] = {'i', 'p', 'c', ':', '/', '/', 'a', 0xD800, 'b', 0};
  LMQ_CHANNEL ch = NULL;
  char longaddr[200];

  EXPECT_HR(E_POINTER, LmqQueryMaxInlineFrameSize(NULL));
  OK(LmqQueryMaxInlineFrameSize(&inl));
  EXPECT(inl == 64);

  OK(LmqQueryTransportBufferLimits(u"ipc://company/product/chan:1234", &l, sizeof l));
  EXPECT(l.MaxBufferSizeBytes >= 64 * 1024 && l.MaxPendingSendBuffers >= 4 &&
         l.MaxPendingReceiveBuffers >= 4 && l.MaxInlineDataSize == inl);
  memset(big, 0xAB, sizeof big);
  OK(LmqQueryTransportBufferLimits(u"ipc://x", (LMQ_TRANSPORTBUFFERLIMITS *)big, sizeof big));
  EXPECT(big[sizeof big - 1] == 0); /* unknown tail zeroed */
  OK(LmqQueryTransportBufferLimitsA("ipc://company/product/chan", &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "LimitsSize", LmqQueryTransportBufferLimits(u"ipc://x", &l, sizeof l - 1));
  EXPECT_ERR(E_INVALIDARG, "LimitsSize", LmqQueryTransportBufferLimitsA("ipc://x", &l, 0));
  EXPECT_ERR(E_POINTER, "Limits", LmqQueryTransportBufferLimits(u"ipc://x", NULL, sizeof l));
  EXPECT_ERR(E_POINTER, "Descriptor", LmqQueryTransportBufferLimits(NULL, &l, sizeof l));
  EXPECT_ERR(E_POINTER, "Descriptor", LmqQueryTransportBufferLimitsA(NULL, &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "lone surrogate", LmqQueryTransportBufferLimits(lone, &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "UTF-8", LmqQueryTransportBufferLimitsA("ipc://\xff", &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "no transport for scheme", LmqQueryTransportBufferLimits(u"udp://host:1", &l, sizeof l));
  OK(LmqQueryTransportBufferLimits(u"tcp://127.0.0.1:5555", &l, sizeof l));
  EXPECT(l.MaxBufferSizeBytes >= 64 * 1024 && l.MaxPendingSendBuffers >= 4 &&
         l.MaxPendingReceiveBuffers >= 4 && l.MaxInlineDataSize == inl);
  OK(LmqQueryTransportBufferLimitsA("TCP://[::1]:5555", &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "needs a port", LmqQueryTransportBufferLimits(u"tcp://host", &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "in brackets", LmqQueryTransportBufferLimitsA("tcp://::1:5555", &l, sizeof l));
  EXPECT_ERR(E_INVALIDARG, "no scheme", LmqQueryTransportBufferLimits(u"just-a-name", &l, sizeof l));

  /* Descriptor and buffer rules through LmqAddTransport. */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  EXPECT_ERR(E_INVALIDARG, "may appear only once", LmqAddTransport(ch, u"ipc://a:1:2", 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "1..=65535", LmqAddTransport(ch, u"ipc://a:0", 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "address is empty", LmqAddTransportA(ch, "ipc://", 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  memset(longaddr, 'x', sizeof longaddr);
  memcpy(longaddr, "ipc://", 6);
  longaddr[6 + 120] = 0;
  EXPECT_ERR(E_INVALIDARG, "120", LmqAddTransport(ch, wide(0, longaddr), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "lone surrogate", LmqAddTransport(ch, lone, 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "must have zero MaxPendingReceiveBuffers", LmqAddTransport(ch, u"ipc://a", 4096, 4, 1, LMQ_TRANSPORTCREATIONFLAGS_SEND, NULL));
  EXPECT_ERR(E_INVALIDARG, "at least one buffer", LmqAddTransport(ch, u"ipc://a", 4096, 0, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "negative", LmqAddTransport(ch, u"ipc://a", 4096, -1, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "BufferSizeBytes 0", LmqAddTransport(ch, u"ipc://a", 0, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "CreationFlags", LmqAddTransport(ch, u"ipc://a", 4096, 1, 1, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "CreationFlags", LmqAddTransport(ch, u"ipc://a", 4096, 1, 1, 7, NULL));
  EXPECT_ERR(E_POINTER, "Descriptor", LmqAddTransport(ch, NULL, 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(STATE_HR, "no transport", LmqOpenChannel(ch, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  OK(LmqAddTransport(ch, wide(0, addr(0, "rules")), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(E_INVALIDARG, "differs", LmqAddTransport(ch, wide(0, addr(0, "rules2")), 8192, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  OK(LmqDestroyChannel(&ch));

  EXPECT_ERR(E_INVALIDARG, "LMQ_CHANNELTYPE", LmqCreateChannel((LMQ_CHANNELTYPE)99, &ch));
  EXPECT_ERR(E_POINTER, "Channel", LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, NULL));
}

static void test_handles(void) {
  LMQ_CHANNEL ch = NULL, stale, copy;
  LMQ_MESSAGE m = NULL;
  LMQ_SENDQUEUE q = NULL;

  EXPECT_ERR(E_HANDLE, "NULL", LmqOpenChannel(NULL, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  EXPECT_ERR(E_HANDLE, "forged", LmqFlushChannel((LMQ_CHANNEL)(ULONG_PTR)0x1234, 0));
  EXPECT_ERR(E_HANDLE, "not a handle", LmqCloseChannel((LMQ_CHANNEL)(ULONG_PTR)0xdeadbeef00000f0fULL, 0));
  m = (LMQ_MESSAGE)&ch;
  EXPECT_ERR(E_HANDLE, "forged", LmqReceiveMessage((LMQ_CHANNEL)&ch, 0, NULL, NULL, &m));
  EXPECT(m == NULL); /* zeroed on failure */

  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqCreateMessage(LMQ_MESSAGEFRAMECOUNT_DEFAULT, &m));
  /* Wrong kinds. */
  EXPECT_ERR(E_HANDLE, "wrong handle kind", LmqFlushChannel((LMQ_CHANNEL)m, 0));
  EXPECT_ERR(E_HANDLE, "is a LMQ_CHANNEL, not a LMQ_MESSAGE", LmqAppendFrame((LMQ_MESSAGE)ch, "x", 1, LMQ_TIMESTAMP_NONE));
  EXPECT_ERR(E_HANDLE, "wrong handle kind", LmqPostMessage((LMQ_SENDQUEUE)ch, &m, 0));
  EXPECT(m != NULL); /* a failed post leaves the handle alone */
  EXPECT_ERR(E_HANDLE, "wrong handle kind", LmqTransportControl((LMQ_TRANSPORT)m, 1, NULL, 0, NULL, 0, NULL));
  EXPECT_ERR(E_HANDLE, "wrong handle kind", LmqDestroyUnpostedMessage((LMQ_MESSAGE *)&ch));
  EXPECT_ERR(E_HANDLE, "wrong handle kind", LmqDestroyChannel((LMQ_CHANNEL *)&m));
  OK(LmqDestroyUnpostedMessage(&m));
  EXPECT(m == NULL);

  /* Destroyed handles (and their children). */
  OK(LmqAddSendQueue(ch, LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &q));
  stale = ch;
  copy = ch;
  OK(LmqDestroyChannel(&ch));
  EXPECT(ch == NULL);
  EXPECT_ERR(E_HANDLE, "destroyed", LmqFlushChannel(stale, 0));
  EXPECT_ERR(E_HANDLE, "destroyed", LmqDestroyChannel(&copy));
  EXPECT(copy == stale); /* a failed destroy leaves the handle alone */
  OK(LmqCreateMessage(1, &m));
  EXPECT_ERR(E_HANDLE, "destroyed", LmqPostMessage(q, &m, 0));
  OK(LmqDestroyUnpostedMessage(&m));
  EXPECT_ERR(E_HANDLE, "NULL", LmqDestroyUnpostedMessage(&m));
  EXPECT_ERR(E_POINTER, "Message", LmqDestroyUnpostedMessage(NULL));
  EXPECT_ERR(E_POINTER, "Channel", LmqDestroyChannel(NULL));
}

static void test_messages(void) {
  LMQ_MESSAGE m = NULL, r = NULL;
  USHORT count = 0;
  UINT64 payload = 0, size = 0, ts = 0;
  const void *data = NULL;
  LMQ_MESSAGEFRAMEENUMHINT hint;
  struct counts c = {0, 0, S_OK};
  char ext[100];

  EXPECT_ERR(E_POINTER, "Message", LmqCreateMessage(0, NULL));
  OK(LmqCreateMessage(4, &m));
  OK(LmqAppendFrame(m, "hello", 5, LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE));
  OK(LmqAppendStaticFrame(m, static_bytes, sizeof static_bytes, 123456789ULL));
  memset(ext, 'e', sizeof ext);
  OK(LmqAppendExternalFrame(m, ext, sizeof ext, LMQ_TIMESTAMP_USE_SYSTEMTIME, on_frame, &c));
  OK(LmqAppendFrame(m, NULL, 0, LMQ_TIMESTAMP_NONE)); /* empty frame */
  EXPECT_ERR(E_POINTER, "Data", LmqAppendFrame(m, NULL, 5, LMQ_TIMESTAMP_NONE));
  EXPECT_ERR(E_POINTER, "Data", LmqAppendStaticFrame(m, NULL, 5, LMQ_TIMESTAMP_NONE));
  EXPECT_ERR(E_POINTER, "Callback", LmqAppendExternalFrame(m, ext, 1, LMQ_TIMESTAMP_NONE, NULL, NULL));
  EXPECT_ERR(E_INVALIDARG, "exceeds the largest frame", LmqAppendFrame(m, ext, 0x100000000ULL, LMQ_TIMESTAMP_NONE));

  OK(LmqGetFrameCount(m, &count, &payload));
  EXPECT(count == 4 && payload == 5 + sizeof static_bytes + sizeof ext);
  OK(LmqGetFrameCount(m, &count, NULL));
  EXPECT_ERR(E_POINTER, "FrameCount", LmqGetFrameCount(m, NULL, &payload));

  memset(&hint, 0, sizeof hint);
  EXPECT_ERR(E_INVALIDARG, "LmqInitFrameEnumHint", LmqGetFrameData(m, 0, &data, &size, &ts, &hint));
  EXPECT_ERR(E_POINTER, "Hint", LmqInitFrameEnumHint(NULL));
  OK(LmqInitFrameEnumHint(&hint));
  OK(LmqGetFrameData(m, 0, &data, &size, &ts, &hint));
  EXPECT(size == 5 && memcmp(data, "hello", 5) == 0 && ts > 130000000000000000ULL);
  OK(LmqGetFrameData(m, 1, &data, &size, &ts, &hint));
  EXPECT(data == (const void *)static_bytes && size == sizeof static_bytes && ts == 123456789ULL);
  OK(LmqGetFrameData(m, 2, &data, &size, NULL, NULL));
  EXPECT(data == (const void *)ext && size == sizeof ext);
  OK(LmqGetFrameData(m, 3, &data, &size, &ts, &hint));
  EXPECT(size == 0 && ts == LMQ_TIMESTAMP_NONE);
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_NOT_FOUND), "past the last frame", LmqGetFrameData(m, 4, &data, &size, &ts, &hint));
  EXPECT_ERR(E_POINTER, "Data", LmqGetFrameData(m, 0, NULL, &size, NULL, NULL));
  EXPECT_ERR(E_POINTER, "DataSize", LmqGetFrameData(m, 0, &data, NULL, NULL, NULL));

  /* A reference shares the frames; the external data is released once, when both are gone. */
  OK(LmqCreateMessageRef(m, &r));
  EXPECT_ERR(E_POINTER, "Clone", LmqCreateMessageRef(m, NULL));
  OK(LmqGetFrameCount(r, &count, NULL));
  EXPECT(count == 4);
  EXPECT_ERR(E_INVALIDARG, "LmqDestroyUnpostedMessage", LmqDisposeReceivedMessage(&m));
  OK(LmqDestroyUnpostedMessage(&m));
  EXPECT(m == NULL && c.release == 0);
  OK(LmqDestroyUnpostedMessage(&r));
  EXPECT(r == NULL && c.acquire == 0 && c.release == 1);
}

struct pair {
  LMQ_CHANNEL server, client;
  LMQ_SENDQUEUE sq, tagged, cq;
  LMQ_TRANSPORT st, ct;
};

static void open_messaging_pair(struct pair *p, const char *address) {
  LMQ_CHANNEL dup = NULL;
  LMQ_MESSAGE none = NULL;
  const WCHAR *d = wide(1, address);
  memset(p, 0, sizeof *p);
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &p->server));
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &p->client));
  OK(LmqAddTransport(p->server, d, 64 * 1024, 4, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &p->st));
  OK(LmqAddTransportA(p->client, address, 64 * 1024, 4, 4, LMQ_TRANSPORT_CREATIONFLAGS_SENDRECEIVE, &p->ct));

  /* Queue parameter rules. */
  EXPECT_ERR(E_INVALIDARG, "LMQ_SENDQUEUETYPE", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_NA, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &p->sq));
  EXPECT_ERR(E_INVALIDARG, "LMQ_SENDQUEUETYPE", LmqAddSendQueue(p->server, (LMQ_SENDQUEUETYPE)8, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &p->sq));
  EXPECT_ERR(E_INVALIDARG, "bounded", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST, LMQ_SENDQUEUEPRIORITY_NORMAL, -5, &p->sq));
  EXPECT_ERR(E_INVALIDARG, "LMQ_SENDQUEUEPRIORITY", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, (LMQ_SENDQUEUEPRIORITY)7, LMQ_QUEUECAPACITY_UNBOUNDED, &p->sq));
  EXPECT_ERR(E_INVALIDARG, "LMQ_QUEUECAPACITY_UNBOUNDED", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, 5, &p->sq));
  EXPECT_ERR(E_INVALIDARG, "bounded", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST, LMQ_SENDQUEUEPRIORITY_NORMAL, 0, &p->sq));
  EXPECT_ERR(E_POINTER, "SendQueue", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, NULL));
  OK(LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &p->sq));
  OK(LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_OLDEST, LMQ_SENDQUEUEPRIORITY_HIGHEST, 8, &p->tagged));
  OK(LmqAddSendQueue(p->client, LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_IDLE, LMQ_QUEUECAPACITY_UNBOUNDED, &p->cq));

  /* Open parameter rules. */
  EXPECT_ERR(E_INVALIDARG, "LMQ_CHANNELROLE", LmqOpenChannel(p->server, (LMQ_CHANNELROLE)0, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  EXPECT_ERR(E_INVALIDARG, "LMQ_RECEIVEQUEUETYPE", LmqOpenChannel(p->server, LMQ_CHANNELROLE_SERVER, (LMQ_RECEIVEQUEUETYPE)9, LMQ_QUEUECAPACITY_UNBOUNDED));
  EXPECT_ERR(E_INVALIDARG, "receive queue", LmqOpenChannel(p->server, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  EXPECT_ERR(E_INVALIDARG, "NA", LmqOpenChannel(p->server, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, 5));
  EXPECT_ERR(E_INVALIDARG, "bounded", LmqOpenChannel(p->server, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_OLDEST, LMQ_QUEUECAPACITY_UNBOUNDED));

  OK(LmqOpenChannel(p->server, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  EXPECT_ERR(STATE_HR, "already open", LmqOpenChannel(p->server, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  EXPECT_ERR(STATE_HR, "before the channel is opened", LmqAddTransport(p->server, u"ipc://other", 64 * 1024, 4, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  EXPECT_ERR(STATE_HR, "before the channel is opened", LmqAddSendQueue(p->server, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &p->sq));

  /* A second server on the same address: "address in use", then CLIENT works. */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &dup));
  OK(LmqAddTransport(dup, d, 64 * 1024, 4, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  OK(LmqAddSendQueue(dup, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &p->cq));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS), "address in use", LmqOpenChannel(dup, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  OK(LmqDestroyChannel(&dup));
  EXPECT_ERR(E_HANDLE, "destroyed", LmqPostMessage(p->cq, &none, 0)); /* the queue went with its channel */

  OK(LmqAddSendQueue(p->client, LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_IDLE, LMQ_QUEUECAPACITY_UNBOUNDED, &p->cq));
  OK(LmqOpenChannel(p->client, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_NEWEST, 1000));
}

static void test_messaging(void) {
  struct pair p;
  LMQ_MESSAGE m = NULL, r = NULL, got = NULL;
  USHORT count = 0;
  ULONG ul;
  UINT64 payload = 0, size = 0, ts = 0;
  const void *data;
  struct counts c = {0, 0, S_OK}, bad = {0, 0, E_ACCESSDENIED};
  char ext[32] = "external frame data";
  static char big[100 * 1024];
  ULONG bytes = 99;
  int i;

  open_messaging_pair(&p, addr(2, "messaging"));

  /* Transport control codes. */
  ul = 50;
  OK(LmqTransportControl(p.ct, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, sizeof ul, NULL, 0, &bytes));
  EXPECT(bytes == 0);
  OK(LmqTransportControl(p.st, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, sizeof ul, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "InputBufferLengthBytes", LmqTransportControl(p.ct, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, 2, NULL, 0, NULL));
  EXPECT_ERR(E_POINTER, "InputBuffer", LmqTransportControl(p.ct, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, NULL, 4, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "no output", LmqTransportControl(p.ct, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, sizeof ul, &bytes, sizeof bytes, NULL));
  EXPECT_ERR(E_INVALIDARG, "ControlCode", LmqTransportControl(p.ct, 77, &ul, sizeof ul, NULL, 0, NULL));
  ul = 0;
  EXPECT_ERR(E_INVALIDARG, "out of range", LmqTransportControl(p.ct, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, sizeof ul, NULL, 0, NULL));

  /* Nothing yet: a poll times out; NULL out-pointer. */
  count = 7;
  payload = 7;
  got = (LMQ_MESSAGE)&count;
  EXPECT_ERR(TIMEOUT_HR, "timeout", LmqReceiveMessage(p.client, 0, &count, &payload, &got));
  EXPECT(count == 0 && payload == 0 && got == NULL); /* outputs zeroed on failure */
  EXPECT_ERR(E_POINTER, "Message", LmqReceiveMessage(p.client, 0, &count, &payload, NULL));

  /* Post a three-frame message and a reference to it. */
  OK(LmqCreateMessage(LMQ_MESSAGEFRAMECOUNT_DEFAULT, &m));
  OK(LmqAppendFrame(m, "first", 5, LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE));
  OK(LmqAppendStaticFrame(m, static_bytes, sizeof static_bytes, 42));
  OK(LmqAppendExternalFrame(m, ext, sizeof ext, LMQ_TIMESTAMP_NONE, on_frame, &c));
  OK(LmqCreateMessageRef(m, &r));
  EXPECT_ERR(E_INVALIDARG, "not tagged", LmqPostMessageWithTag(p.sq, &m, 5, 0));
  EXPECT(m != NULL);
  /* An unbounded queue never waits: its posts take a timeout of 0. */
  EXPECT_ERR(E_INVALIDARG, "unbounded", LmqPostMessage(p.sq, &m, INFINITE));
  EXPECT_ERR(E_INVALIDARG, "pass 0", LmqPostMessage(p.sq, &m, 1));
  EXPECT(m != NULL);
  OK(LmqPostMessage(p.sq, &m, 0));
  EXPECT(m == NULL);
  EXPECT_ERR(E_HANDLE, "NULL", LmqPostMessage(p.sq, &m, 0));
  EXPECT_ERR(E_POINTER, "Message", LmqPostMessage(p.sq, NULL, 0));
  OK(LmqPostMessageWithTag(p.tagged, &r, 7, INFINITE));
  EXPECT(r == NULL);

  for (i = 0; i < 2; i++) {
    OK(LmqReceiveMessage(p.client, WAIT_MS, &count, &payload, &got));
    EXPECT(count == 3 && payload == 5 + sizeof static_bytes + sizeof ext);
    OK(LmqGetFrameData(got, 0, &data, &size, &ts, NULL));
    EXPECT(size == 5 && memcmp(data, "first", 5) == 0 && ts > 130000000000000000ULL);
    OK(LmqGetFrameData(got, 1, &data, &size, &ts, NULL));
    EXPECT(size == sizeof static_bytes && memcmp(data, static_bytes, size) == 0 && ts == 42);
    OK(LmqGetFrameData(got, 2, &data, &size, &ts, NULL));
    EXPECT(size == sizeof ext && memcmp(data, ext, size) == 0 && ts == LMQ_TIMESTAMP_NONE);
    EXPECT_ERR(E_INVALIDARG, "LmqDisposeReceivedMessage", LmqDestroyUnpostedMessage(&got));
    OK(LmqDisposeReceivedMessage(&got));
    EXPECT(got == NULL);
  }
  EXPECT(c.acquire == 1); /* once, although posted twice */

  /* The other direction, and the rules of posting. */
  OK(LmqCreateMessage(1, &m));
  EXPECT_ERR(E_INVALIDARG, "at least one frame", LmqPostMessage(p.cq, &m, 0));
  EXPECT(m != NULL);
  OK(LmqAppendFrame(m, big, sizeof big, LMQ_TIMESTAMP_NONE));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER), "transport buffer", LmqPostMessage(p.cq, &m, 0));
  OK(LmqDestroyUnpostedMessage(&m));
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendExternalFrame(m, ext, 4, LMQ_TIMESTAMP_NONE, on_frame, &bad));
  EXPECT_HR(E_ACCESSDENIED, LmqPostMessage(p.cq, &m, 0)); /* the ACQUIRE_DATA code */
  EXPECT(m != NULL && bad.acquire == 1 && bad.release == 0);
  OK(LmqDestroyUnpostedMessage(&m));
  EXPECT(bad.acquire == 1 && bad.release == 1);
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendFrame(m, "back", 4, LMQ_TIMESTAMP_NONE));
  OK(LmqPostMessage(p.cq, &m, 0));
  OK(LmqFlushChannel(p.client, WAIT_MS));
  OK(LmqReceiveMessage(p.server, WAIT_MS, NULL, NULL, &got));
  OK(LmqGetFrameData(got, 0, &data, &size, NULL, NULL));
  EXPECT(size == 4 && memcmp(data, "back", 4) == 0);
  OK(LmqDisposeReceivedMessage(&got));

  /* Close with linger, then the closed-channel errors. */
  OK(LmqFlushChannel(p.server, WAIT_MS));
  OK(LmqCloseChannel(p.server, 1000));
  EXPECT(c.release == 1); /* both sharers were sent and dropped */
  got = (LMQ_MESSAGE)&count;
  count = 5;
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqReceiveMessage(p.server, INFINITE, &count, NULL, &got));
  EXPECT(got == NULL && count == 0); /* zeroed on failure */
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendFrame(m, "late", 4, LMQ_TIMESTAMP_NONE));
  /* Every call on a closed channel says "closed", posts included. */
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqPostMessage(p.sq, &m, 0));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqPostMessageWithTag(p.tagged, &m, 3, 10));
  EXPECT(m != NULL);
  OK(LmqDestroyUnpostedMessage(&m));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqFlushChannel(p.server, 0));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqOpenChannel(p.server, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  OK(LmqCloseChannel(p.server, 1000)); /* again: nothing to do */
  OK(LmqCloseChannel(p.client, 0));
  OK(LmqDestroyChannel(&p.server));
  OK(LmqDestroyChannel(&p.client));
  EXPECT_ERR(E_HANDLE, "destroyed", LmqTransportControl(p.st, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, sizeof ul, NULL, 0, NULL));
}

static void test_raw(void) {
  LMQ_CHANNEL a = NULL, b = NULL, msg = NULL;
  LMQ_TRANSPORT ta = NULL, tb = NULL, tm = NULL;
  LMQ_TRANSPORTBUFFER *buf = NULL, *rbuf = NULL;
  LMQ_SENDQUEUE q = NULL;
  LMQ_MESSAGE m = NULL;
  ULONG ul = 1;
  PROCESSOR_NUMBER proc = {0, 0, 0};
  const char *address = addr(3, "raw");
  SIZE_T cap;

  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &a));
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &b));
  OK(LmqAddTransport(a, wide(2, address), 4096, 2, 2, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &ta));
  OK(LmqAddTransportA(b, address, 4096, 2, 2, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &tb));
  EXPECT_ERR(E_INVALIDARG, "raw channels have no send queues", LmqAddSendQueue(a, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &q));
  EXPECT_ERR(STATE_HR, "not open", LmqRawChannelGetBuffer(ta, 0, &buf));
  EXPECT_ERR(E_INVALIDARG, "no receive queue", LmqOpenChannel(a, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  OK(LmqOpenChannel(a, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  OK(LmqOpenChannel(b, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  OK(LmqTransportControl(tb, LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS, &ul, sizeof ul, NULL, 0, NULL));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED), "no service thread", LmqChannelControl(a, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, &proc, sizeof proc, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "raw channels have no messages", LmqReceiveMessage(a, 0, NULL, NULL, &m));

  /* A messaging transport has no direct buffers. */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &msg));
  OK(LmqAddTransport(msg, u"ipc://unused", 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &tm));
  EXPECT_ERR(E_INVALIDARG, "messaging channel", LmqRawChannelGetBuffer(tm, 0, &buf));
  OK(LmqDestroyChannel(&msg));

  EXPECT_ERR(E_POINTER, "Buffer", LmqRawChannelGetBuffer(ta, 0, NULL));
  OK(LmqRawChannelGetBuffer(ta, WAIT_MS, &buf));
  EXPECT(buf != NULL && buf->BufferSizeBytes == 4096 && buf->Buffer != NULL);
  cap = buf->BufferSizeBytes;
  memcpy(buf->Buffer, "raw bytes", 9);
  buf->BufferSizeBytes = cap + 1;
  EXPECT_ERR(E_INVALIDARG, "exceeds the buffer size", LmqRawChannelSendBuffer(ta, &buf, FALSE));
  EXPECT(buf != NULL);
  buf->BufferSizeBytes = 9;
  {
    LMQ_TRANSPORTBUFFER fake = *buf; /* same contents, not the library's buffer */
    LMQ_TRANSPORTBUFFER *pf = &fake;
    EXPECT_ERR(E_INVALIDARG, "not the buffer", LmqRawChannelSendBuffer(ta, &pf, FALSE));
  }
  EXPECT_ERR(E_INVALIDARG, "not the buffer", LmqRawChannelSendBuffer(tb, &buf, FALSE));
  OK(LmqRawChannelSendBuffer(ta, &buf, TRUE));
  EXPECT(buf == NULL);
  EXPECT_ERR(E_POINTER, "*Buffer", LmqRawChannelSendBuffer(ta, &buf, FALSE));
  EXPECT_ERR(E_POINTER, "Buffer", LmqRawChannelSendBuffer(ta, NULL, FALSE));

  OK(LmqRawChannelReceiveBuffer(tb, WAIT_MS, &rbuf));
  EXPECT(rbuf != NULL && rbuf->BufferSizeBytes == 9 && memcmp(rbuf->Buffer, "raw bytes", 9) == 0);
  EXPECT_ERR(E_INVALIDARG, "not the buffer", LmqRawChannelDisposeBuffer(ta, &rbuf, FALSE));
  OK(LmqRawChannelDisposeBuffer(tb, &rbuf, TRUE));
  EXPECT(rbuf == NULL);
  EXPECT_ERR(E_POINTER, "Buffer", LmqRawChannelDisposeBuffer(tb, NULL, FALSE));
  EXPECT_ERR(E_POINTER, "Buffer", LmqRawChannelReceiveBuffer(tb, 0, NULL));
  EXPECT_ERR(TIMEOUT_HR, "timed out", LmqRawChannelReceiveBuffer(tb, 0, &rbuf));

  /* And back. */
  OK(LmqRawChannelGetBuffer(tb, WAIT_MS, &buf));
  memcpy(buf->Buffer, "pong", 4);
  buf->BufferSizeBytes = 4;
  OK(LmqRawChannelSendBuffer(tb, &buf, FALSE));
  OK(LmqRawChannelReceiveBuffer(ta, WAIT_MS, &rbuf));
  EXPECT(rbuf->BufferSizeBytes == 4 && memcmp(rbuf->Buffer, "pong", 4) == 0);
  OK(LmqRawChannelDisposeBuffer(ta, &rbuf, FALSE));
  OK(LmqFlushChannel(b, WAIT_MS)); /* everything sent was taken */

  OK(LmqCloseChannel(a, 1000));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqRawChannelGetBuffer(ta, 0, &buf));
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED), "closed", LmqFlushChannel(a, 0));
  OK(LmqDestroyChannel(&a));
  OK(LmqDestroyChannel(&b));
  EXPECT_ERR(E_HANDLE, "destroyed", LmqRawChannelGetBuffer(tb, 0, &buf));
}

/* The CPUs this process may run on: the lowest, and the mask of those
 * below 64 (processor group 0). */
static int allowed_cpus(unsigned long long *mask) {
  cpu_set_t set;
  int cpu, lowest = -1;
  *mask = 0;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    FAIL("sched_getaffinity failed");
  for (cpu = 0; cpu < 64; cpu++) {
    if (CPU_ISSET(cpu, &set)) {
      *mask |= 1ULL << cpu;
      if (lowest < 0)
        lowest = cpu;
    }
  }
  if (lowest < 0)
    FAIL("no allowed CPU below 64");
  return lowest;
}

static void test_channel_control(void) {
  LMQ_CHANNEL ch = NULL;
  LMQ_SENDQUEUE q = NULL;
  PROCESSOR_NUMBER pn, prev;
  GROUP_AFFINITY ga, gprev;
  ULONG bytes = 99;
  unsigned long long mask;
  int cpu = allowed_cpus(&mask);

  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqAddTransport(ch, wide(0, addr(0, "control")), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  OK(LmqAddSendQueue(ch, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &q));

  /* Read only (no input): the set the service threads inherit. */
  memset(&gprev, 0xAB, sizeof gprev);
  OK(LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, NULL, 0, &gprev, sizeof gprev, &bytes));
  EXPECT(bytes == sizeof gprev && gprev.Group == 0 && gprev.Mask == mask);
  EXPECT(gprev.Reserved[0] == 0 && gprev.Reserved[1] == 0 && gprev.Reserved[2] == 0);

  /* Set before open; the previous value comes back. */
  memset(&pn, 0, sizeof pn);
  pn.Number = (BYTE)cpu;
  memset(&prev, 0xAB, sizeof prev);
  OK(LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, &pn, sizeof pn, &prev, sizeof prev, &bytes));
  EXPECT(bytes == sizeof prev && prev.Group == 0 && prev.Number == cpu && prev.Reserved == 0);
  OK(LmqOpenChannel(ch, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));

  /* Set on running threads; the previous value is the one CPU. */
  memset(&ga, 0, sizeof ga);
  ga.Mask = mask;
  OK(LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, &gprev, sizeof gprev + 8, &bytes));
  EXPECT(bytes == sizeof gprev && gprev.Group == 0 && gprev.Mask == 1ULL << cpu);
  OK(LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, NULL, 0, &prev, sizeof prev, NULL));
  EXPECT(prev.Group == 0 && prev.Number == cpu); /* the lowest CPU of the set */
  OK(LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, NULL, 0, &bytes));
  EXPECT(bytes == 0); /* nothing returned */

  /* A short output buffer: refused before anything changes. */
  pn.Number = (BYTE)cpu;
  bytes = 99;
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER), "sizeof(PROCESSOR_NUMBER)", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, &pn, sizeof pn, &prev, 2, &bytes));
  EXPECT(bytes == 0);
  EXPECT_ERR(HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER), "sizeof(GROUP_AFFINITY)", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, &gprev, 8, NULL));
  OK(LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, NULL, 0, &gprev, sizeof gprev, NULL));
  EXPECT(gprev.Mask == mask); /* unchanged */
  EXPECT_ERR(E_POINTER, "OutputBuffer", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, NULL, sizeof gprev, NULL));

  /* Bad inputs: Linux has processor group 0 only. */
  pn.Group = 1;
  EXPECT_ERR(E_INVALIDARG, "no processor groups", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, &pn, sizeof pn, NULL, 0, NULL));
  pn.Group = 0;
  pn.Number = 64;
  EXPECT_ERR(E_INVALIDARG, "0 ..= 63", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, &pn, sizeof pn, NULL, 0, NULL));
  pn.Number = (BYTE)cpu;
  pn.Reserved = 1;
  EXPECT_ERR(E_INVALIDARG, "Reserved", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, &pn, sizeof pn, NULL, 0, NULL));
  ga.Group = 2;
  EXPECT_ERR(E_INVALIDARG, "no processor groups", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, NULL, 0, NULL));
  ga.Group = 0;
  ga.Reserved[1] = 1;
  EXPECT_ERR(E_INVALIDARG, "Reserved", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, NULL, 0, NULL));
  ga.Reserved[1] = 0;
  ga.Mask = 0;
  EXPECT_ERR(E_INVALIDARG, "at least one CPU", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, sizeof ga, NULL, 0, NULL));
  ga.Mask = mask;
  EXPECT_ERR(E_INVALIDARG, "InputBufferLengthBytes", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, &ga, 8, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "ControlCode", LmqChannelControl(ch, (LMQ_CHANNELCONTROLCODE)5, &ga, sizeof ga, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "nothing to set or read", LmqChannelControl(ch, LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, NULL, 0, NULL, 0, NULL));

  OK(LmqCloseChannel(ch, 0));
  OK(LmqDestroyChannel(&ch));
}

/* ---- the peer access policy across two users (run as root) ---- */

/* A child forked before the library is first used (so that it starts with
 * no library thread and no handle): it waits for an address on the pipe,
 * becomes user and group 65534 and talks to the parent's server as CLIENT:
 * posts "hi", expects "welcome". Exit status 0 when it got it. */
static pid_t peer_pid = -1;
static int peer_pipe = -1;

static void other_user_peer(int fd) {
  char address[256];
  ssize_t n = read(fd, address, sizeof address - 1);
  LMQ_CHANNEL ch = NULL;
  LMQ_TRANSPORT t = NULL;
  LMQ_PEERACCESSRULE rule;
  LMQ_SENDQUEUE q = NULL;
  LMQ_MESSAGE m = NULL;
  const void *data = NULL;
  UINT64 size = 0;
  int ok;
  close(fd);
  if (n <= 0)
    _exit(0); /* the parent does not need the peer */
  address[n] = 0;
  if (setgid(65534) != 0 || setuid(65534) != 0)
    _exit(4);
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqAddTransportA(ch, address, 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &t));
  /* A client checks its server too: this one accepts a root server. */
  rule.Access = LMQ_PEERACCESS_USER;
  rule.Id = 0;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, &rule, sizeof rule, NULL, 0, NULL));
  OK(LmqAddSendQueue(ch, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &q));
  OK(LmqOpenChannel(ch, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendFrame(m, "hi", 2, LMQ_TIMESTAMP_NONE));
  OK(LmqPostMessage(q, &m, 0));
  OK(LmqReceiveMessage(ch, WAIT_MS, NULL, NULL, &m));
  OK(LmqGetFrameData(m, 0, &data, &size, NULL, NULL));
  ok = size == 7 && memcmp(data, "welcome", 7) == 0;
  OK(LmqDisposeReceivedMessage(&m));
  OK(LmqCloseChannel(ch, 0));
  OK(LmqDestroyChannel(&ch));
  exit(ok ? 0 : 3);
}

static void fork_other_user_peer(void) {
  int fds[2];
  if (geteuid() != 0)
    return;
  if (pipe(fds) != 0)
    FAIL("pipe failed");
  peer_pid = fork();
  if (peer_pid < 0)
    FAIL("fork failed");
  if (peer_pid == 0) {
    close(fds[1]);
    other_user_peer(fds[0]);
  }
  close(fds[0]);
  peer_pipe = fds[1];
}

static void test_access_policy_and_spin(void) {
  LMQ_CHANNEL ch = NULL, raw = NULL;
  LMQ_TRANSPORT t = NULL, rt = NULL;
  LMQ_SENDQUEUE q = NULL;
  LMQ_PEERACCESSRULE rules[3];
  ULONG ns;
  const char *address = addr(1, "policy");

  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqAddTransportA(ch, address, 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &t));
  OK(LmqAddSendQueue(ch, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &q));

  /* Spin duration: any time, 0 ..= 100 ms. */
  ns = 0;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, sizeof ns, NULL, 0, NULL));
  ns = 100000000;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, sizeof ns, NULL, 0, NULL));
  ns = 100000001;
  EXPECT_ERR(E_INVALIDARG, "spin duration", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, sizeof ns, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "InputBufferLengthBytes", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, 8, NULL, 0, NULL));
  ns = 20000;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, sizeof ns, NULL, 0, NULL));

  /* Access rules and their checks. */
  memset(rules, 0, sizeof rules);
  rules[0].Access = LMQ_PEERACCESS_ANYUSER;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules[0], NULL, 0, NULL));
  rules[0].Access = LMQ_PEERACCESS_SAMEUSER;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules[0], NULL, 0, NULL));
  rules[0].Id = 5;
  EXPECT_ERR(E_INVALIDARG, "takes Id 0", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules[0], NULL, 0, NULL));
  rules[0].Access = (LMQ_PEERACCESS)9;
  EXPECT_ERR(E_INVALIDARG, "not a LMQ_PEERACCESS", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules[0], NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "LMQ_PEERACCESSRULE", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, 12, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "LMQ_PEERACCESSRULE", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, 0, NULL, 0, NULL));
  EXPECT_ERR(E_POINTER, "InputBuffer", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, NULL, sizeof rules[0], NULL, 0, NULL));
  /* The same user, plus user 65534 and group 65534 (nobody / nogroup). */
  rules[0].Access = LMQ_PEERACCESS_SAMEUSER;
  rules[0].Id = 0;
  rules[1].Access = LMQ_PEERACCESS_USER;
  rules[1].Id = 65534;
  rules[2].Access = LMQ_PEERACCESS_GROUP;
  rules[2].Id = 65534;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules, NULL, 0, NULL));

  OK(LmqOpenChannel(ch, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  EXPECT_ERR(STATE_HR, "before the channel opens", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules, NULL, 0, NULL));
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, sizeof ns, NULL, 0, NULL));

  if (peer_pid > 0) {
    /* The policy admits user 65534: the forked peer gets through. */
    LMQ_MESSAGE m = NULL;
    const void *data = NULL;
    UINT64 size = 0;
    int status = 0;
    size_t len = strlen(address);
    EXPECT(write(peer_pipe, address, len) == (ssize_t)len);
    close(peer_pipe);
    peer_pipe = -1;
    OK(LmqReceiveMessage(ch, WAIT_MS, NULL, NULL, &m));
    OK(LmqGetFrameData(m, 0, &data, &size, NULL, NULL));
    EXPECT(size == 2 && memcmp(data, "hi", 2) == 0);
    OK(LmqDisposeReceivedMessage(&m));
    OK(LmqCreateMessage(1, &m));
    OK(LmqAppendFrame(m, "welcome", 7, LMQ_TIMESTAMP_NONE));
    OK(LmqPostMessage(q, &m, 0));
    OK(LmqFlushChannel(ch, WAIT_MS));
    EXPECT(waitpid(peer_pid, &status, 0) == peer_pid);
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    peer_pid = -1;
  } else {
    printf("api_test: not root: the policy's effect on another user is not checked here\n");
  }
  OK(LmqCloseChannel(ch, 0));
  OK(LmqDestroyChannel(&ch));

  /* Raw transports take the same codes. */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &raw));
  OK(LmqAddTransport(raw, wide(1, addr(1, "policy-raw")), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &rt));
  OK(LmqTransportControl(rt, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules, NULL, 0, NULL));
  OK(LmqTransportControl(rt, LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS, &ns, sizeof ns, NULL, 0, NULL));
  OK(LmqOpenChannel(raw, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  EXPECT_ERR(STATE_HR, "before the channel opens", LmqTransportControl(rt, LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY, rules, sizeof rules, NULL, 0, NULL));
  OK(LmqDestroyChannel(&raw));
}

/* The tcp:// control codes: the heartbeat timeout and the peer allow-list,
 * checked when given, before open only, and the allow-list in effect: a
 * client outside it is never served, one inside it is. */
static void tcp_pair(const char *address, const char *allow, LMQ_CHANNEL *srv,
                     LMQ_CHANNEL *cli, LMQ_SENDQUEUE *q) {
  LMQ_TRANSPORT st = NULL, ct = NULL;
  ULONG ms = 2000;
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, srv));
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, cli));
  OK(LmqAddTransportA(*srv, address, 4096, 0, 2, LMQ_TRANSPORTCREATIONFLAGS_RECEIVE, &st));
  OK(LmqAddTransportA(*cli, address, 4096, 2, 0, LMQ_TRANSPORTCREATIONFLAGS_SEND, &ct));
  OK(LmqTransportControl(st, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
  OK(LmqTransportControl(ct, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
  OK(LmqTransportControl(st, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)allow, (ULONG)strlen(allow) + 1, NULL, 0, NULL));
  OK(LmqAddSendQueue(*cli, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, q));
  OK(LmqOpenChannel(*srv, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  OK(LmqOpenChannel(*cli, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  EXPECT_ERR(STATE_HR, "before the channel opens", LmqTransportControl(st, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)allow, (ULONG)strlen(allow), NULL, 0, NULL));
  EXPECT_ERR(STATE_HR, "before the channel opens", LmqTransportControl(ct, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
}

static void test_tcp_controls(void) {
  LMQ_CHANNEL ch = NULL, srv = NULL, cli = NULL, raw = NULL;
  LMQ_TRANSPORT t = NULL, rt = NULL;
  LMQ_SENDQUEUE q = NULL;
  LMQ_MESSAGE m = NULL;
  const void *data = NULL;
  UINT64 size = 0;
  ULONG ms;
  char address[64];
  static const char denied[] = "10.0.0.0/8, 192.168.0.0/16";
  static const char allowed[] = "10.0.0.0/8,127.0.0.0/8";
  static const char bad[] = "10.0.0.0/33";
  static const char not_utf8[] = "10.0.0.0/8,\xff";

  /* Checked when given, on an endpoint of either scheme. */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqAddTransportA(ch, addr(1, "tcp-codes"), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &t));
  ms = 1000;
  EXPECT_ERR(E_INVALIDARG, "tcp:// only", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "tcp:// only", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)allowed, sizeof allowed, NULL, 0, NULL));
  OK(LmqDestroyChannel(&ch));
  snprintf(address, sizeof address, "tcp://127.0.0.1:%d", 20000 + (int)(getpid() % 20000));
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqAddTransportA(ch, address, 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &t));
  ms = 50;
  EXPECT_ERR(E_INVALIDARG, "heartbeat", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "InputBufferLengthBytes", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, 2, NULL, 0, NULL));
  ms = 0;
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "allow-list", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)bad, sizeof bad, NULL, 0, NULL));
  EXPECT_ERR(E_INVALIDARG, "UTF-8", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)not_utf8, sizeof not_utf8, NULL, 0, NULL));
  EXPECT_ERR(E_POINTER, "InputBuffer", LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, NULL, 4, NULL, 0, NULL));
  OK(LmqTransportControl(t, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, "", 1, NULL, 0, NULL));
  OK(LmqDestroyChannel(&ch));

  /* Raw tcp:// transports take them too, before open only. */
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &raw));
  OK(LmqAddTransportA(raw, address, 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &rt));
  ms = 3000;
  OK(LmqTransportControl(rt, LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS, &ms, sizeof ms, NULL, 0, NULL));
  OK(LmqTransportControl(rt, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)allowed, sizeof allowed, NULL, 0, NULL));
  OK(LmqOpenChannel(raw, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA));
  EXPECT_ERR(STATE_HR, "before the channel opens", LmqTransportControl(rt, LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST, (PVOID)allowed, sizeof allowed, NULL, 0, NULL));
  OK(LmqDestroyChannel(&raw));

  /* A server whose list leaves out 127.0.0.1 never serves the client:
   * its message is never taken (the flush runs out its time). */
  tcp_pair(address, denied, &srv, &cli, &q);
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendFrame(m, "denied", 6, LMQ_TIMESTAMP_NONE));
  OK(LmqPostMessage(q, &m, 0));
  EXPECT_HR(TIMEOUT_HR, LmqFlushChannel(cli, 300));
  EXPECT_HR(TIMEOUT_HR, LmqReceiveMessage(srv, 0, NULL, NULL, &m));
  OK(LmqCloseChannel(cli, 0));
  OK(LmqDestroyChannel(&cli));
  OK(LmqDestroyChannel(&srv));

  /* One whose list has it does. */
  tcp_pair(address, allowed, &srv, &cli, &q);
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendFrame(m, "allowed", 7, LMQ_TIMESTAMP_NONE));
  OK(LmqPostMessage(q, &m, 0));
  OK(LmqFlushChannel(cli, WAIT_MS));
  OK(LmqReceiveMessage(srv, WAIT_MS, NULL, NULL, &m));
  OK(LmqGetFrameData(m, 0, &data, &size, NULL, NULL));
  EXPECT(size == 7 && memcmp(data, "allowed", 7) == 0);
  OK(LmqDisposeReceivedMessage(&m));
  OK(LmqCloseChannel(cli, 0));
  OK(LmqDestroyChannel(&cli));
  OK(LmqDestroyChannel(&srv));
}

/* A receive blocked on a channel without a peer ends when another thread
 * closes the channel, whichever of the two comes first. */
struct blocked {
  HRESULT hr;
  LMQ_CHANNEL ch;
};

static void *blocked_receive(void *arg) {
  struct blocked *b = (struct blocked *)arg;
  LMQ_MESSAGE m = NULL;
  b->hr = LmqReceiveMessage(b->ch, INFINITE, NULL, NULL, &m);
  return NULL;
}

static void test_close_wakes_receiver(void) {
  struct blocked s = {S_OK, NULL};
  LMQ_SENDQUEUE q = NULL;
  pthread_t t;
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &s.ch));
  OK(LmqAddTransport(s.ch, wide(3, addr(3, "blocked")), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  OK(LmqAddSendQueue(s.ch, LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED, LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &q));
  OK(LmqOpenChannel(s.ch, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED));
  EXPECT(pthread_create(&t, NULL, blocked_receive, &s) == 0);
  OK(LmqCloseChannel(s.ch, 0));
  EXPECT(pthread_join(t, NULL) == 0);
  EXPECT(s.hr == HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED));
  OK(LmqDestroyChannel(&s.ch));
}

static void test_terminate_releases(void) {
  LMQ_MESSAGE m = NULL;
  LMQ_CHANNEL ch = NULL;
  struct counts c = {0, 0, S_OK};
  static char data[16];
  /* Leftovers are destroyed by the last LmqTerminate. */
  OK(LmqCreateMessage(1, &m));
  OK(LmqAppendExternalFrame(m, data, sizeof data, LMQ_TIMESTAMP_NONE, on_frame, &c));
  OK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch));
  OK(LmqAddTransport(ch, wide(3, addr(3, "leftover")), 4096, 1, 1, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  OK(LmqTerminate());
  EXPECT(c.acquire == 0 && c.release == 1);
  EXPECT_ERR(E_HANDLE, "destroyed", LmqAppendFrame(m, "x", 1, LMQ_TIMESTAMP_NONE));
  EXPECT_ERR(E_HANDLE, "destroyed", LmqFlushChannel(ch, 0));
  EXPECT_ERR(STATE_HR, "without a matching", LmqTerminate());
}

int main(void) {
  fork_other_user_peer(); /* first: before any library thread exists */
  test_init();
  test_limits_and_descriptors();
  test_handles();
  test_messages();
  test_messaging();
  test_channel_control();
  test_access_policy_and_spin();
  test_tcp_controls();
  test_raw();
  test_close_wakes_receiver();
  test_terminate_releases();
  printf("api_test: %d checks passed\n", checks);
  return 0;
}
