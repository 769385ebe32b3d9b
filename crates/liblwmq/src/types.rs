//! The C types, constants and structs of the API (`include/lwmq.h`).
//!
//! The Windows base types (`HRESULT`, `WORD`, `LONG`, `ULONG`, ...) are
//! written by hand at the top of the header (`cbindgen.toml`,
//! `after_includes`) with their exact Linux widths; the aliases here only
//! give the Rust signatures the same names so that cbindgen prints them.
//! Enumerations are plain integer typedefs with `#define` values, not C
//! enums: a value that comes from C is checked before it becomes a Rust
//! enum, so an out-of-range value is an `E_INVALIDARG`, never undefined
//! behaviour.

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_void};

/// Status code: `S_OK` (0) or a failure with the top bit set.
pub type HRESULT = i32;
/// 16-bit unsigned.
pub type WORD = u16;
/// 32-bit signed (Windows `LONG` is 32-bit on every platform).
pub type LONG = i32;
/// 32-bit unsigned (Windows `ULONG` is 32-bit on every platform).
pub type ULONG = u32;
/// 32-bit unsigned.
pub type UINT32 = u32;
/// 64-bit unsigned.
pub type UINT64 = u64;
/// 64-bit unsigned.
pub type ULONG64 = u64;
/// Pointer-sized unsigned (`size_t`).
pub type SIZE_T = usize;
/// 32-bit boolean: 0 is false, anything else true.
pub type BOOL = i32;
/// Byte.
pub type BYTE = u8;
/// Pointer to bytes.
pub type PBYTE = *mut BYTE;
/// Untyped pointer.
pub type PVOID = *mut c_void;
/// Pointer to a `ULONG`.
pub type PULONG = *mut ULONG;
/// Null-terminated UTF-16 string: `const char16_t *` in the header.
pub type PCWSTR = *const u16;
/// Null-terminated UTF-8 string (the `...A` companions).
pub type PCSTR = *const c_char;

/// Opaque target of `LMQ_CHANNEL`.
pub struct LMQ_CHANNEL_S {
    _private: [u8; 0],
}
/// Opaque target of `LMQ_SENDQUEUE`.
pub struct LMQ_SENDQUEUE_S {
    _private: [u8; 0],
}
/// Opaque target of `LMQ_TRANSPORT`.
pub struct LMQ_TRANSPORT_S {
    _private: [u8; 0],
}
/// Opaque target of `LMQ_MESSAGE`.
pub struct LMQ_MESSAGE_S {
    _private: [u8; 0],
}

/// A channel handle (`LmqCreateChannel`). Handles are opaque values, not
/// pointers to memory: a destroyed, forged or wrong-kind handle is detected
/// and reported as `E_HANDLE`.
pub type LMQ_CHANNEL = *mut LMQ_CHANNEL_S;
/// A send queue handle (`LmqAddSendQueue`); valid until its channel is
/// destroyed.
pub type LMQ_SENDQUEUE = *mut LMQ_SENDQUEUE_S;
/// A transport handle (`LmqAddTransport`); valid until its channel is
/// destroyed.
pub type LMQ_TRANSPORT = *mut LMQ_TRANSPORT_S;
/// A message handle (`LmqCreateMessage`, `LmqReceiveMessage`).
pub type LMQ_MESSAGE = *mut LMQ_MESSAGE_S;

/// Channel type (`LmqCreateChannel`).
pub type LMQ_CHANNELTYPE = UINT32;
/// Messages, send queues and a receive queue.
pub const LMQ_CHANNELTYPE_ONE_TO_ONE: LMQ_CHANNELTYPE = 1;
/// Direct buffer access, no messages (`LmqRawChannel*`).
pub const LMQ_CHANNELTYPE_RAW_ONE_TO_ONE: LMQ_CHANNELTYPE = 2;

/// Channel role (`LmqOpenChannel`).
pub type LMQ_CHANNELROLE = UINT32;
/// Opens (connects to) the shared resources, in the background.
pub const LMQ_CHANNELROLE_CLIENT: LMQ_CHANNELROLE = 1;
/// Creates (binds) the shared resources.
pub const LMQ_CHANNELROLE_SERVER: LMQ_CHANNELROLE = 2;

/// Receive queue type (`LmqOpenChannel`).
pub type LMQ_RECEIVEQUEUETYPE = UINT32;
/// No receive queue: only when no transport receives (capacity NA).
pub const LMQ_RECEIVEQUEUETYPE_NA: LMQ_RECEIVEQUEUETYPE = 0;
/// One receiving thread, unbounded (capacity UNBOUNDED).
pub const LMQ_RECEIVEQUEUETYPE_MONO_CONSUMER_UNBOUNDED: LMQ_RECEIVEQUEUETYPE = 1;
/// Any number of receiving threads, unbounded (capacity UNBOUNDED).
pub const LMQ_RECEIVEQUEUETYPE_MULTI_CONSUMER_UNBOUNDED: LMQ_RECEIVEQUEUETYPE = 2;
/// Bounded; when full the oldest message is dropped (capacity >= 1).
pub const LMQ_RECEIVEQUEUETYPE_MULTI_CONSUMER_BOUNDED_DISCARD_OLDEST: LMQ_RECEIVEQUEUETYPE = 3;
/// Bounded; when full the new message is dropped (capacity >= 1).
pub const LMQ_RECEIVEQUEUETYPE_MULTI_CONSUMER_BOUNDED_DISCARD_NEWEST: LMQ_RECEIVEQUEUETYPE = 4;

/// Send queue type (`LmqAddSendQueue`).
pub type LMQ_SENDQUEUETYPE = UINT32;
/// One posting thread, unbounded.
pub const LMQ_SENDQUEUETYPE_MONO_PRODUCER_UNBOUNDED: LMQ_SENDQUEUETYPE = 1;
/// Any number of posting threads, unbounded.
pub const LMQ_SENDQUEUETYPE_MULTI_PRODUCER_UNBOUNDED: LMQ_SENDQUEUETYPE = 2;
/// Unbounded, with "latest value wins" tags (`LmqPostMessageWithTag`).
pub const LMQ_SENDQUEUETYPE_MULTI_PRODUCER_UNBOUNDED_TAGGED: LMQ_SENDQUEUETYPE = 3;
/// Bounded; a post to a full queue waits, then drops the oldest message.
pub const LMQ_SENDQUEUETYPE_MULTI_PRODUCER_BOUNDED_DISCARD_OLDEST: LMQ_SENDQUEUETYPE = 4;
/// Bounded; a post to a full queue waits, then fails.
pub const LMQ_SENDQUEUETYPE_MULTI_PRODUCER_BOUNDED_DISCARD_NEWEST: LMQ_SENDQUEUETYPE = 5;
/// Bounded discard-oldest, tagged.
pub const LMQ_SENDQUEUETYPE_MULTI_PRODUCER_BOUNDED_DISCARD_OLDEST_TAGGED: LMQ_SENDQUEUETYPE = 6;
/// Bounded discard-newest, tagged.
pub const LMQ_SENDQUEUETYPE_MULTI_PRODUCER_BOUNDED_DISCARD_NEWEST_TAGGED: LMQ_SENDQUEUETYPE = 7;

/// Send queue priority (`LmqAddSendQueue`): the values of the Windows
/// `THREAD_PRIORITY_*` constants.
pub type LMQ_SENDQUEUEPRIORITY = LONG;
/// Always drained first (may starve the others).
pub const LMQ_SENDQUEUEPRIORITY_TIME_CRITICAL: LMQ_SENDQUEUEPRIORITY = 15;
/// Weighted round-robin, weight 16.
pub const LMQ_SENDQUEUEPRIORITY_HIGHEST: LMQ_SENDQUEUEPRIORITY = 2;
/// Weighted round-robin, weight 8.
pub const LMQ_SENDQUEUEPRIORITY_ABOVE_NORMAL: LMQ_SENDQUEUEPRIORITY = 1;
/// Weighted round-robin, weight 4.
pub const LMQ_SENDQUEUEPRIORITY_NORMAL: LMQ_SENDQUEUEPRIORITY = 0;
/// Weighted round-robin, weight 2.
pub const LMQ_SENDQUEUEPRIORITY_BELOW_NORMAL: LMQ_SENDQUEUEPRIORITY = -1;
/// Weighted round-robin, weight 1.
pub const LMQ_SENDQUEUEPRIORITY_LOWEST: LMQ_SENDQUEUEPRIORITY = -2;
/// Only when every other queue is empty (may starve).
pub const LMQ_SENDQUEUEPRIORITY_IDLE: LMQ_SENDQUEUEPRIORITY = -15;

/// Capacity of an unbounded queue.
pub const LMQ_QUEUECAPACITY_UNBOUNDED: ULONG = 0xFFFF_FFFF;
/// Capacity when there is no queue (receive queue type NA).
pub const LMQ_QUEUECAPACITY_NA: ULONG = 0;

/// `FrameCountHint` of `LmqCreateMessage`: no particular frame count.
pub const LMQ_MESSAGEFRAMECOUNT_DEFAULT: ULONG = 0;

/// Frame timestamp: none.
pub const LMQ_TIMESTAMP_NONE: UINT64 = 0;
/// Frame timestamp: the system time when the frame is appended.
pub const LMQ_TIMESTAMP_USE_SYSTEMTIME: UINT64 = 1;
/// Frame timestamp: the precise (sub-microsecond) system time when the
/// frame is appended. Any other value is an explicit NT time (100 ns ticks
/// since 1601-01-01 UTC).
pub const LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE: UINT64 = 2;

/// Transport creation flags (`LmqAddTransport`).
pub type LMQ_TRANSPORTCREATIONFLAGS = UINT32;
/// This side only sends (MaxPendingReceiveBuffers must be 0).
pub const LMQ_TRANSPORTCREATIONFLAGS_SEND: LMQ_TRANSPORTCREATIONFLAGS = 1;
/// This side only receives (MaxPendingSendBuffers must be 0).
pub const LMQ_TRANSPORTCREATIONFLAGS_RECEIVE: LMQ_TRANSPORTCREATIONFLAGS = 2;
/// Both directions.
pub const LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE: LMQ_TRANSPORTCREATIONFLAGS = 3;
/// Spelling of the IPC transport documentation.
pub const LMQ_TRANSPORT_CREATIONFLAGS_SEND: LMQ_TRANSPORTCREATIONFLAGS =
    LMQ_TRANSPORTCREATIONFLAGS_SEND;
/// Spelling of the IPC transport documentation.
pub const LMQ_TRANSPORT_CREATIONFLAGS_RECEIVE: LMQ_TRANSPORTCREATIONFLAGS =
    LMQ_TRANSPORTCREATIONFLAGS_RECEIVE;
/// Spelling of the IPC transport documentation.
pub const LMQ_TRANSPORT_CREATIONFLAGS_SENDRECEIVE: LMQ_TRANSPORTCREATIONFLAGS =
    LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE;

/// `LmqTransportControl`, IPC: input a `ULONG` retry interval in
/// milliseconds (1 ..= 86,400,000; default 100).
pub const LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS: ULONG = 1;

/// `LmqChannelControl`: input a `ULONG` CPU number; pins the channel's
/// service threads to that CPU.
pub const LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR: ULONG = 1;
/// `LmqChannelControl`: input an `LMQ_GROUP_AFFINITY`; pins the
/// channel's service threads to the CPUs `Group * 64 + bit` of `Mask`.
pub const LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY: ULONG = 2;

/// Wait forever (timeouts are in milliseconds).
pub const INFINITE: ULONG = 0xFFFF_FFFF;

/// The API version: `MAKEWORD(major, minor)`, major in the low byte.
pub const LMQ_CURRENT_API_VERSION: WORD = 0x0001;

/// Reason of an external-frame callback.
pub type LMQ_MESSAGECALLBACKREASON = UINT32;
/// The message is being prepared for sending: the data must be ready and
/// stay unchanged until `RELEASE_DATA`. Called at most once per frame; a
/// failure code makes the post fail with that code.
pub const LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA: LMQ_MESSAGECALLBACKREASON = 1;
/// The library no longer needs the data. Called exactly once per frame,
/// even if `ACQUIRE_DATA` never was; the return value is ignored.
pub const LMQ_MESSAGECALLBACKREASON_RELEASE_DATA: LMQ_MESSAGECALLBACKREASON = 2;

/// The external-frame callback (`LmqAppendExternalFrame`). It may be
/// called from any thread, including the library's service threads, and
/// must not call back into the library for the same message.
pub type PLMQ_MESSAGECALLBACK = Option<
    unsafe extern "C" fn(
        Reason: LMQ_MESSAGECALLBACKREASON,
        Data: *const c_void,
        Size: UINT64,
        Context: PVOID,
    ) -> HRESULT,
>;

/// A transport buffer of a raw channel (`LmqRawChannel*Buffer`). Owned by
/// the library. After `LmqRawChannelGetBuffer`, `BufferSizeBytes` is the
/// buffer's size: set it to the number of bytes to send before
/// `LmqRawChannelSendBuffer`. After `LmqRawChannelReceiveBuffer` it is the
/// number of bytes received. (Declared by hand in the header, where
/// `Buffer` is `const PBYTE`: the pointer is constant, the bytes are not.)
#[repr(C)]
pub struct LMQ_TRANSPORTBUFFER {
    /// Usable length in bytes.
    pub BufferSizeBytes: SIZE_T,
    /// The buffer's memory.
    pub Buffer: PBYTE,
}

/// Buffer limits of a transport (`LmqQueryTransportBufferLimits`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LMQ_TRANSPORTBUFFERLIMITS {
    /// Largest `BufferSizeBytes`.
    pub MaxBufferSizeBytes: SIZE_T,
    /// Largest `MaxPendingSendBuffers`.
    pub MaxPendingSendBuffers: LONG,
    /// Largest `MaxPendingReceiveBuffers`.
    pub MaxPendingReceiveBuffers: LONG,
    /// Largest frame stored inline in a message (no allocation).
    pub MaxInlineDataSize: ULONG,
}

/// Frame enumeration hint (`LmqGetFrameData`): caller-allocated, opaque,
/// initialised with `LmqInitFrameEnumHint`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LMQ_MESSAGEFRAMEENUMHINT {
    /// Library use only.
    pub Reserved: [UINT64; 4],
}

/// Input of `LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY` (the
/// layout of the Windows `GROUP_AFFINITY`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LMQ_GROUP_AFFINITY {
    /// One bit per CPU of the group.
    pub Mask: UINT64,
    /// Group number: CPU `n` of the group is Linux CPU `Group * 64 + n`.
    pub Group: WORD,
    /// Must be zero.
    pub Reserved: [WORD; 3],
}
