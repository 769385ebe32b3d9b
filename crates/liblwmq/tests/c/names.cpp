/*
 * names.cpp: every name of LwMQ's C API as its programs write it
 * (/work/shared/spec/lwmq-c-names.md), with its exact type, so that a
 * name, a signature, a value or a base type that drifts is a compile
 * error. Built by crates/liblwmq/tests/header.rs as C++20 with
 * -Wall -Wextra -Werror, with and without -fshort-wchar, linked against
 * liblwmq.so (every function must exist) and run.
 */
#include <api-lwmq-time.h>
#include <api-lwmq-messaging.h>

#include <cstdio>
#include <type_traits>

template <class A, class B> constexpr bool same = std::is_same_v<A, B>;

/* ---- base types: the Windows LLP64 model ---- */
static_assert(same<BYTE, unsigned char> && same<PBYTE, unsigned char *>);
static_assert(same<USHORT, unsigned short> && same<PUSHORT, unsigned short *>);
static_assert(same<WORD, unsigned short> && sizeof(WORD) == 2);
static_assert(sizeof(LONG) == 4 && std::is_signed_v<LONG>);
static_assert(sizeof(ULONG) == 4 && std::is_unsigned_v<ULONG> && same<PULONG, ULONG *>);
static_assert(sizeof(UINT32) == 4 && std::is_unsigned_v<UINT32>);
static_assert(sizeof(BOOL) == 4 && std::is_signed_v<BOOL>);
static_assert(sizeof(HRESULT) == 4 && std::is_signed_v<HRESULT>);
static_assert(same<UINT64, unsigned long long> && same<PUINT64, unsigned long long *>);
static_assert(same<ULONG64, unsigned long long> && same<PULONG64, unsigned long long *>);
static_assert(same<ULONGLONG, unsigned long long> && same<SIZE_T, unsigned long long>);
static_assert(same<LONG_PTR, long long>);
static_assert(same<PVOID, void *> && same<PCVOID, const void *> && same<PPCVOID, const void **>);
static_assert(std::is_void_v<VOID>);
#if __SIZEOF_WCHAR_T__ == 2
static_assert(same<PCWSTR, const wchar_t *>, "L\"...\" literals pass as PCWSTR");
#else
static_assert(same<PCWSTR, const char16_t *>, "u\"...\" literals pass as PCWSTR");
#endif

/* ---- handles and their pointer types ---- */
static_assert(same<PLMQ_CHANNEL, LMQ_CHANNEL *> && std::is_pointer_v<LMQ_CHANNEL>);
static_assert(same<PLMQ_SENDQUEUE, LMQ_SENDQUEUE *> && std::is_pointer_v<LMQ_SENDQUEUE>);
static_assert(same<PLMQ_TRANSPORT, LMQ_TRANSPORT *> && std::is_pointer_v<LMQ_TRANSPORT>);
static_assert(same<PLMQ_MESSAGE, LMQ_MESSAGE *> && std::is_pointer_v<LMQ_MESSAGE>);
static_assert(!same<LMQ_CHANNEL, LMQ_MESSAGE> && !same<LMQ_SENDQUEUE, LMQ_TRANSPORT>);

/* ---- structures (named, so that struct _LMQ_... works too) ---- */
static_assert(same<struct _LMQ_TRANSPORTBUFFER, LMQ_TRANSPORTBUFFER> &&
              same<PLMQ_TRANSPORTBUFFER, LMQ_TRANSPORTBUFFER *>);
static_assert(same<decltype(LMQ_TRANSPORTBUFFER::BufferSizeBytes), SIZE_T> &&
              same<decltype(LMQ_TRANSPORTBUFFER::Buffer), const PBYTE>);
static_assert(same<struct _LMQ_TRANSPORTBUFFERLIMITS, LMQ_TRANSPORTBUFFERLIMITS> &&
              same<PLMQ_TRANSPORTBUFFERLIMITS, LMQ_TRANSPORTBUFFERLIMITS *>);
static_assert(same<struct _LMQ_MESSAGEFRAMEENUMHINT, LMQ_MESSAGEFRAMEENUMHINT> &&
              same<PLMQ_MESSAGEFRAMEENUMHINT, LMQ_MESSAGEFRAMEENUMHINT *>);
static_assert(same<struct _FILETIME, FILETIME> && sizeof(FILETIME) == 8);
static_assert(same<struct _PROCESSOR_NUMBER, PROCESSOR_NUMBER> && sizeof(PROCESSOR_NUMBER) == 4);
static_assert(same<decltype(PROCESSOR_NUMBER::Group), WORD> &&
              same<decltype(PROCESSOR_NUMBER::Number), BYTE> &&
              same<decltype(PROCESSOR_NUMBER::Reserved), BYTE>);
static_assert(same<struct _GROUP_AFFINITY, GROUP_AFFINITY> && sizeof(GROUP_AFFINITY) == 16);
static_assert(same<decltype(GROUP_AFFINITY::Mask), unsigned long long> &&
              same<decltype(GROUP_AFFINITY::Group), WORD> &&
              same<decltype(GROUP_AFFINITY::Reserved), WORD[3]>);

/* ---- the callback ---- */
static_assert(same<PLMQ_MESSAGECALLBACK,
                   HRESULT (*)(LQM_MESSAGECALLBACKREASON Reason, PCVOID Data,
                               UINT64 DataSize, PVOID Context)>);
static_assert(same<LMQ_MESSAGECALLBACK *, PLMQ_MESSAGECALLBACK>);
static_assert(same<LMQ_MESSAGECALLBACKREASON, LQM_MESSAGECALLBACKREASON>);

/* ---- enumerations: C enums, values in the reference's order ---- */
template <class E, class V> constexpr bool enum_value(V v, long long n) {
  return std::is_enum_v<E> && same<V, E> && static_cast<long long>(v) == n;
}
static_assert(enum_value<LMQ_CHANNELTYPE>(LMQ_CHANNELTYPE_ONE_TO_ONE, 1));
static_assert(enum_value<LMQ_CHANNELTYPE>(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, 2));
static_assert(enum_value<LMQ_CHANNELROLE>(LMQ_CHANNELROLE_CLIENT, 1));
static_assert(enum_value<LMQ_CHANNELROLE>(LMQ_CHANNELROLE_SERVER, 2));
static_assert(enum_value<LMQ_RECEIVEQUEUETYPE>(LMQ_RECEIVEQUEUETYPE_NA, 0));
static_assert(enum_value<LMQ_RECEIVEQUEUETYPE>(LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, 1));
static_assert(enum_value<LMQ_RECEIVEQUEUETYPE>(LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_UNBOUNDED, 2));
static_assert(enum_value<LMQ_RECEIVEQUEUETYPE>(LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_OLDEST, 3));
static_assert(enum_value<LMQ_RECEIVEQUEUETYPE>(LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_NEWEST, 4));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_NA, 0));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED, 1));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED, 2));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED_TAGGED, 3));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_OLDEST, 4));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST, 5));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_OLDEST, 6));
static_assert(enum_value<LMQ_SENDQUEUETYPE>(LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_NEWEST, 7));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_TIME_CRITICAL, 0));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_HIGHEST, 1));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_ABOVE_NORMAL, 2));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_NORMAL, 3));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_BELOW_NORMAL, 4));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_LOWEST, 5));
static_assert(enum_value<LMQ_SENDQUEUEPRIORITY>(LMQ_SENDQUEUEPRIORITY_IDLE, 6));
static_assert(enum_value<LMQ_CHANNELCONTROLCODE>(LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR, 0));
static_assert(enum_value<LMQ_CHANNELCONTROLCODE>(LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY, 1));
static_assert(enum_value<LQM_MESSAGECALLBACKREASON>(LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA, 0));
static_assert(enum_value<LQM_MESSAGECALLBACKREASON>(LMQ_MESSAGECALLBACKREASON_RELEASE_DATA, 1));

/* ---- other names the samples use ---- */
static_assert(same<decltype(LMQ_QUEUECAPACITY_UNBOUNDED), LONG> &&
              same<decltype(LMQ_QUEUECAPACITY_NA), LONG> &&
              LMQ_QUEUECAPACITY_UNBOUNDED != LMQ_QUEUECAPACITY_NA);
static_assert(LMQ_MESSAGEFRAMECOUNT_DEFAULT == 0);
static_assert(LMQ_TIMESTAMP_NONE != LMQ_TIMESTAMP_USE_SYSTEMTIME &&
              LMQ_TIMESTAMP_USE_SYSTEMTIME != LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE);
static_assert(LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE ==
              (LMQ_TRANSPORTCREATIONFLAGS_SEND | LMQ_TRANSPORTCREATIONFLAGS_RECEIVE));
static_assert(LMQ_TRANSPORT_CREATIONFLAGS_SEND == LMQ_TRANSPORTCREATIONFLAGS_SEND &&
              LMQ_TRANSPORT_CREATIONFLAGS_RECEIVE == LMQ_TRANSPORTCREATIONFLAGS_RECEIVE &&
              LMQ_TRANSPORT_CREATIONFLAGS_SENDRECEIVE == LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE);
static_assert(LMQ_CURRENT_API_VERSION == MAKEWORD(1, 0) && MAKEWORD(1, 2) == 0x0201);
static_assert(INFINITE == 0xFFFFFFFFu);
static_assert(S_OK == 0 && SUCCEEDED(S_OK) && FAILED(E_FAIL) && E_FAIL == (HRESULT)0x80004005);
static_assert(HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER) == (HRESULT)0x8007007A);
static_assert(HRESULT_FROM_WIN32(0) == S_OK);

/* ---- every function, into a pointer of exactly the specified type ----
 * (global, so that linking proves the library defines each one) */
UINT64 (*pLmqTimeElapsedNs)(const UINT64 Then, const UINT64 Now) = &LmqTimeElapsedNs;
UINT64 (*pLmqTimeElapsedNsSince)(const UINT64 Then) = &LmqTimeElapsedNsSince;
UINT64 (*pLmqGetTickCountNs)(VOID) = &LmqGetTickCountNs;
UINT64 (*pLmqTimeElapsed)(const FILETIME *Then, const FILETIME *Now) = &LmqTimeElapsed;
HRESULT (*pLmqInitialize)(WORD) = &LmqInitialize;
HRESULT (*pLmqTerminate)(VOID) = &LmqTerminate;
HRESULT (*pLmqCreateChannel)(LMQ_CHANNELTYPE, PLMQ_CHANNEL) = &LmqCreateChannel;
HRESULT (*pLmqOpenChannel)(LMQ_CHANNEL, LMQ_CHANNELROLE, LMQ_RECEIVEQUEUETYPE, LONG) = &LmqOpenChannel;
HRESULT (*pLmqChannelControl)(LMQ_CHANNEL, LMQ_CHANNELCONTROLCODE, PVOID, ULONG, PVOID, ULONG,
                                    PULONG) = &LmqChannelControl;
HRESULT (*pLmqFlushChannel)(LMQ_CHANNEL, UINT32) = &LmqFlushChannel;
HRESULT (*pLmqCloseChannel)(LMQ_CHANNEL, UINT32) = &LmqCloseChannel;
HRESULT (*pLmqDestroyChannel)(PLMQ_CHANNEL) = &LmqDestroyChannel;
HRESULT (*pLmqAddSendQueue)(LMQ_CHANNEL, LMQ_SENDQUEUETYPE, LMQ_SENDQUEUEPRIORITY, LONG,
                                  PLMQ_SENDQUEUE) = &LmqAddSendQueue;
HRESULT (*pLmqQueryTransportBufferLimits)(PCWSTR, PLMQ_TRANSPORTBUFFERLIMITS, ULONG) =
    &LmqQueryTransportBufferLimits;
HRESULT (*pLmqAddTransport)(LMQ_CHANNEL, PCWSTR, SIZE_T, LONG, LONG, UINT32, PLMQ_TRANSPORT) =
    &LmqAddTransport;
HRESULT (*pLmqTransportControl)(LMQ_TRANSPORT, ULONG, PVOID, ULONG, PVOID, ULONG, PULONG) =
    &LmqTransportControl;
HRESULT (*pLmqRawChannelGetBuffer)(LMQ_TRANSPORT, UINT32, PLMQ_TRANSPORTBUFFER *) =
    &LmqRawChannelGetBuffer;
HRESULT (*pLmqRawChannelSendBuffer)(LMQ_TRANSPORT, PLMQ_TRANSPORTBUFFER *, BOOL) =
    &LmqRawChannelSendBuffer;
HRESULT (*pLmqRawChannelReceiveBuffer)(LMQ_TRANSPORT, UINT32, PLMQ_TRANSPORTBUFFER *) =
    &LmqRawChannelReceiveBuffer;
HRESULT (*pLmqRawChannelDisposeBuffer)(LMQ_TRANSPORT, PLMQ_TRANSPORTBUFFER *, BOOL) =
    &LmqRawChannelDisposeBuffer;
HRESULT (*pLmqCreateMessage)(USHORT, PLMQ_MESSAGE) = &LmqCreateMessage;
HRESULT (*pLmqCreateMessageRef)(LMQ_MESSAGE, PLMQ_MESSAGE) = &LmqCreateMessageRef;
HRESULT (*pLmqAppendFrame)(LMQ_MESSAGE, PCVOID, UINT64, ULONG64) = &LmqAppendFrame;
HRESULT (*pLmqAppendStaticFrame)(LMQ_MESSAGE, PCVOID, UINT64, ULONG64) = &LmqAppendStaticFrame;
HRESULT (*pLmqAppendExternalFrame)(LMQ_MESSAGE, PVOID, UINT64, ULONG64, PLMQ_MESSAGECALLBACK,
                                         PVOID) = &LmqAppendExternalFrame;
HRESULT (*pLmqGetFrameCount)(LMQ_MESSAGE, PUSHORT, PUINT64) = &LmqGetFrameCount;
HRESULT (*pLmqGetFrameData)(LMQ_MESSAGE, USHORT, PCVOID *, PUINT64, PULONG64,
                                  PLMQ_MESSAGEFRAMEENUMHINT) = &LmqGetFrameData;
HRESULT (*pLmqInitFrameEnumHint)(PLMQ_MESSAGEFRAMEENUMHINT) = &LmqInitFrameEnumHint;
HRESULT (*pLmqQueryMaxInlineFrameSize)(PUSHORT) = &LmqQueryMaxInlineFrameSize;
HRESULT (*pLmqDestroyUnpostedMessage)(PLMQ_MESSAGE) = &LmqDestroyUnpostedMessage;
HRESULT (*pLmqPostMessage)(LMQ_SENDQUEUE, PLMQ_MESSAGE, UINT32) = &LmqPostMessage;
HRESULT (*pLmqPostMessageWithTag)(LMQ_SENDQUEUE, PLMQ_MESSAGE, LONG_PTR, UINT32) =
    &LmqPostMessageWithTag;
HRESULT (*pLmqReceiveMessage)(LMQ_CHANNEL, UINT32, PUSHORT, PUINT64, PLMQ_MESSAGE) =
    &LmqReceiveMessage;
HRESULT (*pLmqDisposeReceivedMessage)(PLMQ_MESSAGE) = &LmqDisposeReceivedMessage;

/* A callback written as the reference's samples write one. */
static HRESULT OnFrame(LQM_MESSAGECALLBACKREASON Reason, PCVOID Data, UINT64 DataSize,
                       PVOID Context) {
  (void)Data;
  (void)DataSize;
  if (Reason == LMQ_MESSAGECALLBACKREASON_RELEASE_DATA)
    ++*static_cast<int *>(Context);
  return S_OK;
}

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "names.cpp:%d: %s\n  last error: %s\n", __LINE__, #cond, \
                   LmqGetLastErrorMessage());                                       \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

int main() {
  /* No LmqInitialize: the reference's samples never call it. */
  USHORT inline_size = 0;
  CHECK(SUCCEEDED(pLmqQueryMaxInlineFrameSize(&inline_size)) && inline_size == 64);

  /* The samples pass SIZE_T* and ULONGLONG* where PUINT64/PULONG64 are declared. */
  LMQ_MESSAGE m = NULL;
  CHECK(SUCCEEDED(pLmqCreateMessage(LMQ_MESSAGEFRAMECOUNT_DEFAULT, &m)));
  static char data[] = "frame";
  int released = 0;
  CHECK(SUCCEEDED(pLmqAppendExternalFrame(m, data, sizeof data, LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE,
                                          OnFrame, &released)));
  USHORT frames = 0;
  SIZE_T payload = 0;
  CHECK(SUCCEEDED(pLmqGetFrameCount(m, &frames, &payload)) && frames == 1 && payload == sizeof data);
  PCVOID bytes = NULL;
  SIZE_T size = 0;
  ULONGLONG stamp = 0;
  CHECK(SUCCEEDED(pLmqGetFrameData(m, 0, &bytes, &size, &stamp, NULL)) && size == sizeof data);
  CHECK(pLmqDestroyUnpostedMessage(&m) == S_OK && m == NULL && released == 1);

  /* A descriptor literal as the program's wchar_t mode writes it. */
  LMQ_TRANSPORTBUFFERLIMITS limits;
#if __SIZEOF_WCHAR_T__ == 2
  CHECK(SUCCEEDED(pLmqQueryTransportBufferLimits(L"ipc://MiniChat-v1", &limits, sizeof limits)));
#else
  CHECK(SUCCEEDED(pLmqQueryTransportBufferLimits(u"ipc://MiniChat-v1", &limits, sizeof limits)));
#endif
  CHECK(limits.MaxBufferSizeBytes >= 64 * 1024 && limits.MaxInlineDataSize == inline_size);

  FILETIME then = {0, 1}, now = {100, 1};
  CHECK(pLmqTimeElapsed(&then, &now) == 10000);
  CHECK(pLmqTimeElapsedNs(5, 12) == 7);
  UINT64 t = pLmqGetTickCountNs();
  CHECK(pLmqTimeElapsedNsSince(t) < 60ull * 1000 * 1000 * 1000);

  std::printf("names: ok\n");
  return 0;
}
