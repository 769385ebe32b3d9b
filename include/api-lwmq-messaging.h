/*
 * api-lwmq-messaging.h: the LwMQ messaging API for Linux (liblwmq.so /
 * liblwmq.a), with the names, types and values of the Windows LwMQ library.
 *
 * LwMQ programs include api-lwmq-time.h first, then this header; both work
 * alone too, and lwmq.h includes both.
 *
 * Every function returns an HRESULT; on failure LmqGetLastErrorMessage()
 * (lwmq's own) returns the reason as text. Descriptors (PCWSTR) are
 * null-terminated UTF-16: L"ipc://..." with -fshort-wchar (as on Windows),
 * u"ipc://..." otherwise; each function taking a descriptor has a UTF-8
 * companion with an A suffix. No LmqInitialize is needed. See
 * docs/c-api.md.
 *
 * Maintained by hand so that it follows the reference to the letter;
 * crates/liblwmq/tests/header.rs checks every declaration, value and
 * structure layout against the library's Rust declarations.
 */
#ifndef API_LWMQ_MESSAGING_H
#define API_LWMQ_MESSAGING_H

#include "lwmq-windows-types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- handles */

/*
 * Handles are opaque values, not pointers to memory: a NULL, destroyed,
 * forged or wrong-kind handle is detected and returns E_HANDLE.
 */
typedef struct _LMQ_CHANNEL *LMQ_CHANNEL, **PLMQ_CHANNEL;
typedef struct _LMQ_SENDQUEUE *LMQ_SENDQUEUE, **PLMQ_SENDQUEUE;
typedef struct _LMQ_TRANSPORT *LMQ_TRANSPORT, **PLMQ_TRANSPORT;
typedef struct _LMQ_MESSAGE *LMQ_MESSAGE, **PLMQ_MESSAGE;

/* -------------------------------------------------------- enumerations */

typedef enum _LMQ_CHANNELTYPE {
  LMQ_CHANNELTYPE_ONE_TO_ONE = 1, /* messages, send queues, a receive queue */
  LMQ_CHANNELTYPE_RAW_ONE_TO_ONE  /* direct buffer access (LmqRawChannel*) */
} LMQ_CHANNELTYPE;

typedef enum _LMQ_CHANNELROLE {
  LMQ_CHANNELROLE_CLIENT = 1, /* opens (connects to) the shared resources, in the background */
  LMQ_CHANNELROLE_SERVER      /* creates (binds) them */
} LMQ_CHANNELROLE;

typedef enum _LMQ_RECEIVEQUEUETYPE {
  LMQ_RECEIVEQUEUETYPE_NA,                                  /* no receive queue: only when no transport receives */
  LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED,              /* one receiving thread */
  LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_UNBOUNDED,             /* any number of receiving threads */
  LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_OLDEST, /* when full, the oldest message is dropped */
  LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_NEWEST  /* when full, the new message is dropped */
} LMQ_RECEIVEQUEUETYPE;

typedef enum _LMQ_SENDQUEUETYPE {
  LMQ_SENDQUEUETYPE_NA,                                        /* not a queue type */
  LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED,                    /* one posting thread */
  LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED,                   /* any number of posting threads */
  LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED_TAGGED,            /* "latest value wins" tags */
  LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_OLDEST,      /* full: the oldest queued message is dropped */
  LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST,      /* full: the post waits up to its timeout, then fails */
  LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_OLDEST,
  LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_NEWEST
} LMQ_SENDQUEUETYPE;

typedef enum _LMQ_SENDQUEUEPRIORITY {
  LMQ_SENDQUEUEPRIORITY_TIME_CRITICAL, /* always drained first (may starve the others) */
  LMQ_SENDQUEUEPRIORITY_HIGHEST,       /* weighted round-robin, weight 16 */
  LMQ_SENDQUEUEPRIORITY_ABOVE_NORMAL,  /* 8 */
  LMQ_SENDQUEUEPRIORITY_NORMAL,        /* 4 */
  LMQ_SENDQUEUEPRIORITY_BELOW_NORMAL,  /* 2 */
  LMQ_SENDQUEUEPRIORITY_LOWEST,        /* 1 */
  LMQ_SENDQUEUEPRIORITY_IDLE           /* only when every other queue is empty (may starve) */
} LMQ_SENDQUEUEPRIORITY;

typedef enum _LMQ_CHANNELCONTROLCODE {
  /* In and out: a PROCESSOR_NUMBER; pins the service threads to that CPU. */
  LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR,
  /* In and out: a GROUP_AFFINITY; pins the service threads to its CPUs. */
  LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY
} LMQ_CHANNELCONTROLCODE;

/* The reason of an external-frame callback (spelled LQM_ by the reference). */
typedef enum _LQM_MESSAGECALLBACKREASON {
  /* The message is being prepared for sending: the data must be ready and
   * stay unchanged until RELEASE_DATA. At most once per frame; a failure
   * code makes the post fail with that code. */
  LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA,
  /* The library no longer needs the data. Exactly once per frame, even if
   * ACQUIRE_DATA never was; the return value is ignored. */
  LMQ_MESSAGECALLBACKREASON_RELEASE_DATA
} LQM_MESSAGECALLBACKREASON;
typedef LQM_MESSAGECALLBACKREASON LMQ_MESSAGECALLBACKREASON;

/* lwmq's own: the kind of an LMQ_PEERACCESSRULE. */
typedef enum _LMQ_PEERACCESS {
  LMQ_PEERACCESS_SAMEUSER, /* same effective user (always accepted); Id 0 */
  LMQ_PEERACCESS_USER,     /* also processes of effective user id Id */
  LMQ_PEERACCESS_GROUP,    /* also processes of effective group id Id */
  LMQ_PEERACCESS_ANYUSER   /* any local user; Id 0 */
} LMQ_PEERACCESS;

/* ----------------------------------------------------------- constants */

/* Queue capacities (LmqOpenChannel, LmqAddSendQueue): unbounded types take
 * UNBOUNDED, bounded ones 1 or more, receive type NA takes NA. */
#define LMQ_QUEUECAPACITY_UNBOUNDED ((LONG)-1)
#define LMQ_QUEUECAPACITY_NA ((LONG)0)

/* LmqCreateMessage: no particular frame count. */
#define LMQ_MESSAGEFRAMECOUNT_DEFAULT ((USHORT)0)

/* Frame timestamps (ULONG64); any other value is an explicit NT time. */
#define LMQ_TIMESTAMP_NONE ((ULONG64)0)
#define LMQ_TIMESTAMP_USE_SYSTEMTIME ((ULONG64)1)
#define LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE ((ULONG64)2)

/* LmqAddTransport CreationFlags (both spellings of the reference). */
#define LMQ_TRANSPORTCREATIONFLAGS_SEND 0x00000001U
#define LMQ_TRANSPORTCREATIONFLAGS_RECEIVE 0x00000002U
#define LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE 0x00000003U
#define LMQ_TRANSPORT_CREATIONFLAGS_SEND LMQ_TRANSPORTCREATIONFLAGS_SEND
#define LMQ_TRANSPORT_CREATIONFLAGS_RECEIVE LMQ_TRANSPORTCREATIONFLAGS_RECEIVE
#define LMQ_TRANSPORT_CREATIONFLAGS_SENDRECEIVE LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE

/* LmqTransportControl codes (IPC). None has an output.
 * SETCLIENTCONNECTIONRETRYINTERVALMS: in a ULONG, 1..86400000 ms (default 100).
 * SETPEERACCESSPOLICY (lwmq's own): in 1 or more LMQ_PEERACCESSRULEs; which
 *   peer users are accepted (the same user always is); before open only.
 * SETSPINDURATIONNS (lwmq's own): in a ULONG, 0..100000000 ns a waiting
 *   thread spins before it sleeps.
 * SETHEARTBEATTIMEOUTMS (lwmq's own, tcp://): in a ULONG, 0 (off) or
 *   100..3600000 ms of silence after which the peer is declared dead
 *   (default 5000); before open only.
 * SETPEERALLOWLIST (lwmq's own, tcp://): in UTF-8 text, networks in CIDR
 *   form separated by commas or spaces (empty: any peer, the default); the
 *   peer addresses the transport talks to; before open only. */
#define LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS 0x00000001U
#define LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY 0x00010001U
#define LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS 0x00010002U
#define LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS 0x00010003U
#define LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST 0x00010004U

/* LmqInitialize: MAKEWORD(major, minor) of the API this header describes. */
#define LMQ_CURRENT_API_VERSION MAKEWORD(1, 0)

/* ---------------------------------------------------------- structures */

/*
 * A transport buffer of a raw channel, owned by the library
 * (LmqRawChannelGetBuffer / LmqRawChannelReceiveBuffer). After Get,
 * BufferSizeBytes is the buffer's size: set it to the number of bytes to
 * send. After Receive it is the number of bytes received.
 */
typedef struct _LMQ_TRANSPORTBUFFER {
  SIZE_T BufferSizeBytes;
  const PBYTE Buffer;
} LMQ_TRANSPORTBUFFER, *PLMQ_TRANSPORTBUFFER;

/* The limits of a transport (LmqQueryTransportBufferLimits). */
typedef struct _LMQ_TRANSPORTBUFFERLIMITS {
  SIZE_T MaxBufferSizeBytes;
  LONG MaxPendingSendBuffers;
  LONG MaxPendingReceiveBuffers;
  ULONG MaxInlineDataSize;
} LMQ_TRANSPORTBUFFERLIMITS, *PLMQ_TRANSPORTBUFFERLIMITS;

/* Frame enumeration hint (LmqGetFrameData): caller-allocated, opaque,
 * initialised by LmqInitFrameEnumHint. */
typedef struct _LMQ_MESSAGEFRAMEENUMHINT {
  UINT64 Reserved[4];
} LMQ_MESSAGEFRAMEENUMHINT, *PLMQ_MESSAGEFRAMEENUMHINT;

/* lwmq's own: a rule of LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY. */
typedef struct _LMQ_PEERACCESSRULE {
  LMQ_PEERACCESS Access;
  ULONG Id;
} LMQ_PEERACCESSRULE, *PLMQ_PEERACCESSRULE;

/*
 * The external-frame callback (LmqAppendExternalFrame): LMQ_MESSAGECALLBACK
 * is the function type, PLMQ_MESSAGECALLBACK a pointer to it. It may be
 * called from any thread, including the library's, and must not call the
 * library for the same message.
 */
typedef HRESULT LMQ_MESSAGECALLBACK(LQM_MESSAGECALLBACKREASON Reason, PCVOID Data,
                                    UINT64 DataSize, PVOID Context);
typedef LMQ_MESSAGECALLBACK *PLMQ_MESSAGECALLBACK;

/* ----------------------------------------------------- initialisation */

/* Optional: the library initialises on first use. Counts one use;
 * VersionRequested is LMQ_CURRENT_API_VERSION. */
HRESULT LmqInitialize(WORD VersionRequested);

/* Undoes one LmqInitialize. The one that brings the count to zero destroys
 * every handle still alive in the process (channels closed with zero
 * linger, messages destroyed, external frames released); the library stays
 * usable. Without a matching LmqInitialize: ERROR_INVALID_STATE. */
HRESULT LmqTerminate(VOID);

/* lwmq's own: the text of the calling thread's last failure (UTF-8, never
 * NULL, valid until the next failure on this thread). */
PCSTR LmqGetLastErrorMessage(VOID);

/* ------------------------------------------------------------ channels */

HRESULT LmqCreateChannel(LMQ_CHANNELTYPE ChannelType, PLMQ_CHANNEL Channel);

/* Servers create the shared resources now, clients connect in the
 * background. A SERVER whose address is taken fails with
 * HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS) and can be opened as CLIENT. */
HRESULT LmqOpenChannel(LMQ_CHANNEL Channel, LMQ_CHANNELROLE Role,
                       LMQ_RECEIVEQUEUETYPE ReceiveQueueType, LONG ReceiveQueueCapacity);

/* Sets the CPU affinity of the channel's service threads (messaging
 * channels). With an OutputBuffer of the same type the value in force
 * before the call is returned (*BytesReturned = its size); InputBuffer NULL
 * and 0 bytes only reads it. Linux: processor group 0 only. */
HRESULT LmqChannelControl(LMQ_CHANNEL Channel, LMQ_CHANNELCONTROLCODE ControlCode,
                          PVOID InputBuffer, ULONG InputBufferLengthBytes,
                          PVOID OutputBuffer, ULONG OutputBufferLengthBytes,
                          PULONG BytesReturned);

/* Waits until everything queued was sent and taken by the peer, or
 * TimeoutMs (HRESULT_FROM_WIN32(ERROR_TIMEOUT); sending goes on). */
HRESULT LmqFlushChannel(LMQ_CHANNEL Channel, UINT32 TimeoutMs);

/* Posts fail from now on; waits up to LingerTimeoutMs for queued messages
 * to be sent, then closes regardless (HRESULT_FROM_WIN32(ERROR_TIMEOUT) if
 * some were left). Closing again, or a channel never opened, is S_OK. */
HRESULT LmqCloseChannel(LMQ_CHANNEL Channel, UINT32 LingerTimeoutMs);

/* Closes with zero linger if needed, sets *Channel to NULL; the channel's
 * send queue and transport handles become invalid. */
HRESULT LmqDestroyChannel(PLMQ_CHANNEL Channel);

/* Before open only. Unbounded types take LMQ_QUEUECAPACITY_UNBOUNDED,
 * bounded ones a Capacity of 1 or more. */
HRESULT LmqAddSendQueue(LMQ_CHANNEL Channel, LMQ_SENDQUEUETYPE QueueType,
                        LMQ_SENDQUEUEPRIORITY Priority, LONG Capacity,
                        PLMQ_SENDQUEUE SendQueue);

/* ---------------------------------------------------------- transports */

/* LimitsSizeBytes is sizeof(LMQ_TRANSPORTBUFFERLIMITS) (a larger size is
 * accepted: unknown fields are zeroed). */
HRESULT LmqQueryTransportBufferLimits(PCWSTR TransportDescriptor,
                                      PLMQ_TRANSPORTBUFFERLIMITS Limits,
                                      ULONG LimitsSizeBytes);
HRESULT LmqQueryTransportBufferLimitsA(PCSTR TransportDescriptor,
                                       PLMQ_TRANSPORTBUFFERLIMITS Limits,
                                       ULONG LimitsSizeBytes);

/* Before open only; e.g. L"ipc://company/product/channel:1". Transport is
 * optional (raw channels need it for their buffer functions). */
HRESULT LmqAddTransport(LMQ_CHANNEL Channel, PCWSTR TransportDescriptor,
                        SIZE_T BufferSizeBytes, LONG MaxPendingSendBuffers,
                        LONG MaxPendingReceiveBuffers, UINT32 CreationFlags,
                        PLMQ_TRANSPORT Transport);
HRESULT LmqAddTransportA(LMQ_CHANNEL Channel, PCSTR TransportDescriptor,
                         SIZE_T BufferSizeBytes, LONG MaxPendingSendBuffers,
                         LONG MaxPendingReceiveBuffers, UINT32 CreationFlags,
                         PLMQ_TRANSPORT Transport);

/* LMQ_TRANSPORTCONTROL_* codes; none has an output (OutputBuffer NULL,
 * length 0; *BytesReturned, if given, is set to 0). */
HRESULT LmqTransportControl(LMQ_TRANSPORT Transport, ULONG ControlCode,
                            PVOID InputBuffer, ULONG InputBufferLengthBytes,
                            PVOID OutputBuffer, ULONG OutputBufferLengthBytes,
                            PULONG BytesReturned);

/* ------------------------------------------- direct buffers (raw channels) */

/* Takes the next free send buffer, waiting up to TimeoutMs. Up to
 * MaxPendingSendBuffers buffers may be out at once, each its own struct
 * (one more: ERROR_INVALID_STATE at once). Before a peer connects they are
 * staged in private memory and delivered when it does. */
HRESULT LmqRawChannelGetBuffer(LMQ_TRANSPORT Transport, UINT32 TimeoutMs,
                               PLMQ_TRANSPORTBUFFER *Buffer);

/* Sends the first (*Buffer)->BufferSizeBytes bytes, sets *Buffer to NULL.
 * Buffers are sent in the order obtained (another first: E_INVALIDARG, the
 * buffer stays the caller's). A buffer obtained on a connection that ended
 * before this call is lost, never copied to the next peer:
 * ERROR_CONNECTION_ABORTED. */
HRESULT LmqRawChannelSendBuffer(LMQ_TRANSPORT Transport, PLMQ_TRANSPORTBUFFER *Buffer,
                                BOOL EraseBufferAfterSending);

/* Takes the next filled buffer, waiting up to TimeoutMs. Up to
 * MaxPendingReceiveBuffers may be held at once. The bytes lie in memory the
 * peer process can write: copy what you check before relying on it. */
HRESULT LmqRawChannelReceiveBuffer(LMQ_TRANSPORT Transport, UINT32 TimeoutMs,
                                   PLMQ_TRANSPORTBUFFER *Buffer);

/* Gives a buffer back, sets *Buffer to NULL: a received one (in any
 * order), or one from LmqRawChannelGetBuffer that is not to be sent
 * (nothing of it reaches the peer). */
HRESULT LmqRawChannelDisposeBuffer(LMQ_TRANSPORT Transport, PLMQ_TRANSPORTBUFFER *Buffer,
                                   BOOL EraseBufferBeforeDisposing);

/* ------------------------------------------------------------ messages */

HRESULT LmqCreateMessage(USHORT FrameCountHint, PLMQ_MESSAGE Message);

/* A new message sharing Message's frames (no copy), to post one payload on
 * several channels; each is posted or destroyed on its own. */
HRESULT LmqCreateMessageRef(LMQ_MESSAGE Message, PLMQ_MESSAGE Clone);

/* Copies the data (inline up to LmqQueryMaxInlineFrameSize bytes).
 * Timestamp: LMQ_TIMESTAMP_* or an NT time. */
HRESULT LmqAppendFrame(LMQ_MESSAGE Message, PCVOID Data, UINT64 DataSize,
                       ULONG64 Timestamp);

/* Keeps the pointer: the data must stay valid and unchanged while any
 * message holds the frame (in practice, for the life of the channels). */
HRESULT LmqAppendStaticFrame(LMQ_MESSAGE Message, PCVOID Data, UINT64 DataSize,
                             ULONG64 Timestamp);

/* Keeps the pointer; Callback is called with ACQUIRE_DATA at most once and
 * RELEASE_DATA exactly once (neither if this call fails). */
HRESULT LmqAppendExternalFrame(LMQ_MESSAGE Message, PVOID Data, UINT64 DataSize,
                               ULONG64 Timestamp, PLMQ_MESSAGECALLBACK Callback,
                               PVOID Context);

/* FrameCount is required, PayloadSizeBytes optional. */
HRESULT LmqGetFrameCount(LMQ_MESSAGE Message, PUSHORT FrameCount,
                         PUINT64 PayloadSizeBytes);

/* *Data stays valid until the message is posted, disposed or destroyed,
 * or a frame is appended. Timestamp and EnumHint are optional; past the
 * last frame: HRESULT_FROM_WIN32(ERROR_NOT_FOUND). */
HRESULT LmqGetFrameData(LMQ_MESSAGE Message, USHORT FrameIndex, PCVOID *Data,
                        PUINT64 DataSize, PULONG64 Timestamp,
                        PLMQ_MESSAGEFRAMEENUMHINT EnumHint);

HRESULT LmqInitFrameEnumHint(PLMQ_MESSAGEFRAMEENUMHINT EnumHint);

HRESULT LmqQueryMaxInlineFrameSize(PUSHORT MaxInlineFrameSize);

/* For created messages never posted; sets *Message to NULL. */
HRESULT LmqDestroyUnpostedMessage(PLMQ_MESSAGE Message);

/* ---------------------------------------------------- posting, receiving */

/* On success the library owns the message and *Message is NULL; on failure
 * the caller keeps it. TimeoutMs bounds the wait of a full bounded queue;
 * unbounded queues never wait and take 0. */
HRESULT LmqPostMessage(LMQ_SENDQUEUE SendQueue, PLMQ_MESSAGE Message, UINT32 TimeoutMs);

/* Tagged queue types: a still-queued message with the same non-zero Tag is
 * replaced. */
HRESULT LmqPostMessageWithTag(LMQ_SENDQUEUE SendQueue, PLMQ_MESSAGE Message,
                              LONG_PTR Tag, UINT32 TimeoutMs);

/* Waits up to TimeoutMs (0 polls, INFINITE waits until a message arrives or
 * the channel closes: HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED)).
 * FrameCount and PayloadSizeBytes are optional; on failure every output
 * given is zeroed. */
HRESULT LmqReceiveMessage(LMQ_CHANNEL Channel, UINT32 TimeoutMs, PUSHORT FrameCount,
                          PUINT64 PayloadSizeBytes, PLMQ_MESSAGE Message);

/* For received messages; sets *Message to NULL. */
HRESULT LmqDisposeReceivedMessage(PLMQ_MESSAGE Message);

#ifdef __cplusplus
}
#endif

#endif /* API_LWMQ_MESSAGING_H */
