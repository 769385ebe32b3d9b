//! The C types, enumerations, constants and structs of the API, with the
//! exact names LwMQ programs use.
//!
//! The public headers (`include/api-lwmq-messaging.h`,
//! `include/api-lwmq-time.h`, `include/lwmq-windows-types.h`) are written
//! by hand, so that they can follow the Windows definitions to the letter
//! (LLP64 base types, `PCWSTR` that depends on the size of `wchar_t`, C
//! enumerations with named tags, `struct _LMQ_...`). `tests/header.rs`
//! keeps the two from drifting: it compiles the pinned cbindgen's rendering
//! of every exported Rust function after the headers (a parameter of
//! another type is a conflicting declaration), checks every value of
//! [`C_VALUES`] and the size of every enumeration in [`C_ENUMS`] with
//! `static_assert`, and the size and field offsets of every struct.
//!
//! The aliases below carry the C names so that the functions' signatures
//! read as the headers do. An enumeration is a `u32` alias here, not a Rust
//! enum: a value that comes from C is checked before use, so an
//! out-of-range value is an `E_INVALIDARG`, never undefined behaviour.

#![allow(non_camel_case_types, non_snake_case, clippy::upper_case_acronyms)]

use std::ffi::{c_char, c_void};

/// 8-bit unsigned (`unsigned char`).
pub type BYTE = u8;
/// Pointer to bytes.
pub type PBYTE = *mut BYTE;
/// 16-bit unsigned (`unsigned short`).
pub type USHORT = u16;
/// Pointer to a `USHORT`.
pub type PUSHORT = *mut USHORT;
/// 16-bit unsigned (`unsigned short`).
pub type WORD = u16;
/// 32-bit signed: Windows `long` is 32-bit, so `int` on Linux.
pub type LONG = i32;
/// 32-bit unsigned: Windows `unsigned long`, so `unsigned int` on Linux.
pub type ULONG = u32;
/// Pointer to a `ULONG`.
pub type PULONG = *mut ULONG;
/// 32-bit unsigned (`unsigned int`).
pub type DWORD = u32;
/// 32-bit unsigned (`unsigned int`).
pub type UINT32 = u32;
/// 32-bit boolean: 0 is false, anything else true.
pub type BOOL = i32;
/// Status code: `S_OK` (0) or a failure with the top bit set.
pub type HRESULT = LONG;
/// 64-bit unsigned: `unsigned long long` in the headers, as on Windows.
pub type UINT64 = u64;
/// Pointer to a `UINT64`.
pub type PUINT64 = *mut UINT64;
/// 64-bit unsigned (`unsigned long long`).
pub type ULONG64 = u64;
/// Pointer to a `ULONG64`.
pub type PULONG64 = *mut ULONG64;
/// Pointer-sized unsigned: `unsigned long long` in the headers (Win64).
pub type SIZE_T = usize;
/// Pointer-sized signed: `long long` in the headers (Win64).
pub type LONG_PTR = i64;
/// A processor mask of one group (`unsigned long long`).
pub type KAFFINITY = u64;
/// Untyped pointer.
pub type PVOID = *mut c_void;
/// Untyped pointer to constant data.
pub type PCVOID = *const c_void;
/// Out-parameter for a `PCVOID`.
pub type PPCVOID = *mut PCVOID;
/// A UTF-16 code unit (`wchar_t` where it is 2 bytes, else `char16_t`).
pub type WCHAR = u16;
/// Null-terminated UTF-16 string.
pub type PCWSTR = *const WCHAR;
/// Null-terminated UTF-8 string (the `...A` companions).
pub type PCSTR = *const c_char;

/// Opaque target of `LMQ_CHANNEL` (`struct _LMQ_CHANNEL` in C).
pub struct LMQ_CHANNEL_S {
    _private: [u8; 0],
}
/// Opaque target of `LMQ_SENDQUEUE` (`struct _LMQ_SENDQUEUE` in C).
pub struct LMQ_SENDQUEUE_S {
    _private: [u8; 0],
}
/// Opaque target of `LMQ_TRANSPORT` (`struct _LMQ_TRANSPORT` in C).
pub struct LMQ_TRANSPORT_S {
    _private: [u8; 0],
}
/// Opaque target of `LMQ_MESSAGE` (`struct _LMQ_MESSAGE` in C).
pub struct LMQ_MESSAGE_S {
    _private: [u8; 0],
}

/// A channel handle (`LmqCreateChannel`). Handles are opaque values, not
/// pointers to memory: a destroyed, forged or wrong-kind handle is detected
/// and reported as `E_HANDLE`.
pub type LMQ_CHANNEL = *mut LMQ_CHANNEL_S;
/// Out-parameter for an `LMQ_CHANNEL`.
pub type PLMQ_CHANNEL = *mut LMQ_CHANNEL;
/// A send queue handle (`LmqAddSendQueue`); valid until its channel is
/// destroyed.
pub type LMQ_SENDQUEUE = *mut LMQ_SENDQUEUE_S;
/// Out-parameter for an `LMQ_SENDQUEUE`.
pub type PLMQ_SENDQUEUE = *mut LMQ_SENDQUEUE;
/// A transport handle (`LmqAddTransport`); valid until its channel is
/// destroyed.
pub type LMQ_TRANSPORT = *mut LMQ_TRANSPORT_S;
/// Out-parameter for an `LMQ_TRANSPORT`.
pub type PLMQ_TRANSPORT = *mut LMQ_TRANSPORT;
/// A message handle (`LmqCreateMessage`, `LmqReceiveMessage`).
pub type LMQ_MESSAGE = *mut LMQ_MESSAGE_S;
/// In/out parameter for an `LMQ_MESSAGE`.
pub type PLMQ_MESSAGE = *mut LMQ_MESSAGE;

/// Defines the C enumerations (as `u32` aliases with one constant per
/// value) and the C constants, and lists all of them in [`C_VALUES`] and
/// [`C_ENUMS`], so that a value added here and not in the headers (or the
/// other way round) fails `tests/header.rs`.
macro_rules! c_values {
    (
        enums {
            $(
                $(#[$em:meta])*
                $ename:ident {
                    $( $(#[$vm:meta])* $vname:ident = $vval:expr, )*
                }
            )*
        }
        consts {
            $( $(#[$cm:meta])* $cname:ident : $cty:ty = $cval:expr, )*
        }
    ) => {
        $(
            $(#[$em])*
            pub type $ename = u32;
            $( $(#[$vm])* pub const $vname: $ename = $vval; )*
        )*
        $( $(#[$cm])* pub const $cname: $cty = $cval; )*

        /// Every enumeration value and constant of the C API: its C name,
        /// its value and the size of its type (checked against the
        /// headers).
        pub const C_VALUES: &[(&str, i128, usize)] = &[
            $( $( (stringify!($vname), $vname as i128, size_of::<$ename>()), )* )*
            $( (stringify!($cname), $cname as i128, size_of::<$cty>()), )*
        ];

        /// The C enumeration types (each 32-bit in C and here).
        pub const C_ENUMS: &[&str] = &[ $( stringify!($ename), )* ];
    };
}

const fn hresult(v: u32) -> HRESULT {
    v as HRESULT
}

c_values! {
    enums {
        /// Channel type (`LmqCreateChannel`).
        LMQ_CHANNELTYPE {
            /// Messages, send queues and a receive queue.
            LMQ_CHANNELTYPE_ONE_TO_ONE = 1,
            /// Direct buffer access, no messages (`LmqRawChannel*`).
            LMQ_CHANNELTYPE_RAW_ONE_TO_ONE = 2,
        }
        /// Channel role (`LmqOpenChannel`).
        LMQ_CHANNELROLE {
            /// Opens (connects to) the shared resources, in the background.
            LMQ_CHANNELROLE_CLIENT = 1,
            /// Creates (binds) the shared resources.
            LMQ_CHANNELROLE_SERVER = 2,
        }
        /// Receive queue type (`LmqOpenChannel`).
        LMQ_RECEIVEQUEUETYPE {
            /// No receive queue: only when no transport receives (capacity NA).
            LMQ_RECEIVEQUEUETYPE_NA = 0,
            /// One receiving thread, unbounded (capacity UNBOUNDED).
            LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED = 1,
            /// Any number of receiving threads, unbounded (capacity UNBOUNDED).
            LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_UNBOUNDED = 2,
            /// Bounded; when full the oldest message is dropped (capacity >= 1).
            LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_OLDEST = 3,
            /// Bounded; when full the new message is dropped (capacity >= 1).
            LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_NEWEST = 4,
        }
        /// Send queue type (`LmqAddSendQueue`).
        LMQ_SENDQUEUETYPE {
            /// Not a queue type (refused by `LmqAddSendQueue`).
            LMQ_SENDQUEUETYPE_NA = 0,
            /// One posting thread, unbounded.
            LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED = 1,
            /// Any number of posting threads, unbounded.
            LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED = 2,
            /// Unbounded, with "latest value wins" tags (`LmqPostMessageWithTag`).
            LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED_TAGGED = 3,
            /// Bounded; a post to a full queue drops the oldest queued message.
            LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_OLDEST = 4,
            /// Bounded; a post to a full queue waits up to its timeout, then fails.
            LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST = 5,
            /// Bounded discard-oldest, tagged.
            LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_OLDEST = 6,
            /// Bounded discard-newest, tagged.
            LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_NEWEST = 7,
        }
        /// Send queue priority (`LmqAddSendQueue`).
        LMQ_SENDQUEUEPRIORITY {
            /// Always drained first (may starve the others).
            LMQ_SENDQUEUEPRIORITY_TIME_CRITICAL = 0,
            /// Weighted round-robin, weight 16.
            LMQ_SENDQUEUEPRIORITY_HIGHEST = 1,
            /// Weighted round-robin, weight 8.
            LMQ_SENDQUEUEPRIORITY_ABOVE_NORMAL = 2,
            /// Weighted round-robin, weight 4.
            LMQ_SENDQUEUEPRIORITY_NORMAL = 3,
            /// Weighted round-robin, weight 2.
            LMQ_SENDQUEUEPRIORITY_BELOW_NORMAL = 4,
            /// Weighted round-robin, weight 1.
            LMQ_SENDQUEUEPRIORITY_LOWEST = 5,
            /// Only when every other queue is empty (may starve).
            LMQ_SENDQUEUEPRIORITY_IDLE = 6,
        }
        /// Channel control code (`LmqChannelControl`).
        LMQ_CHANNELCONTROLCODE {
            /// Input and output a `PROCESSOR_NUMBER`: pins the channel's
            /// service threads to that CPU (group 0 only on Linux).
            LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR = 0,
            /// Input and output a `GROUP_AFFINITY`: pins the channel's
            /// service threads to the CPUs of `Mask` (group 0 only on Linux).
            LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY = 1,
        }
        /// Reason of an external-frame callback (spelled `LQM_` in the
        /// reference; `LMQ_MESSAGECALLBACKREASON` is an alias).
        LQM_MESSAGECALLBACKREASON {
            /// The message is being prepared for sending: the data must be
            /// ready and stay unchanged until `RELEASE_DATA`. Called at most
            /// once per frame; a failure code makes the post fail with it.
            LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA = 0,
            /// The library no longer needs the data. Called exactly once per
            /// frame, even if `ACQUIRE_DATA` never was; the return value is
            /// ignored.
            LMQ_MESSAGECALLBACKREASON_RELEASE_DATA = 1,
        }
        /// Kind of a peer access rule (`LMQ_PEERACCESSRULE`, lwmq's own).
        LMQ_PEERACCESS {
            /// Processes of the same effective user (always accepted; `Id` 0).
            LMQ_PEERACCESS_SAMEUSER = 0,
            /// Also processes whose effective user id is `Id`.
            LMQ_PEERACCESS_USER = 1,
            /// Also processes whose effective group id is `Id`.
            LMQ_PEERACCESS_GROUP = 2,
            /// Any local user (`Id` 0); state it only where every local user
            /// is trusted.
            LMQ_PEERACCESS_ANYUSER = 3,
        }
    }
    consts {
        /// `ReceiveQueueCapacity`/`Capacity` of an unbounded queue.
        LMQ_QUEUECAPACITY_UNBOUNDED: LONG = -1,
        /// `ReceiveQueueCapacity` when there is no queue (receive type NA).
        LMQ_QUEUECAPACITY_NA: LONG = 0,
        /// `FrameCountHint` of `LmqCreateMessage`: no particular frame count.
        LMQ_MESSAGEFRAMECOUNT_DEFAULT: USHORT = 0,
        /// Frame timestamp: none.
        LMQ_TIMESTAMP_NONE: ULONG64 = 0,
        /// Frame timestamp: the system time when the frame is appended.
        LMQ_TIMESTAMP_USE_SYSTEMTIME: ULONG64 = 1,
        /// Frame timestamp: the precise (sub-microsecond) system time when
        /// the frame is appended. Any other value is an explicit NT time
        /// (100 ns ticks since 1601-01-01 UTC).
        LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE: ULONG64 = 2,
        /// This side only sends (MaxPendingReceiveBuffers must be 0).
        LMQ_TRANSPORTCREATIONFLAGS_SEND: UINT32 = 1,
        /// This side only receives (MaxPendingSendBuffers must be 0).
        LMQ_TRANSPORTCREATIONFLAGS_RECEIVE: UINT32 = 2,
        /// Both directions.
        LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE: UINT32 = 3,
        /// Spelling of the IPC transport documentation.
        LMQ_TRANSPORT_CREATIONFLAGS_SEND: UINT32 = LMQ_TRANSPORTCREATIONFLAGS_SEND,
        /// Spelling of the IPC transport documentation.
        LMQ_TRANSPORT_CREATIONFLAGS_RECEIVE: UINT32 = LMQ_TRANSPORTCREATIONFLAGS_RECEIVE,
        /// Spelling of the IPC transport documentation.
        LMQ_TRANSPORT_CREATIONFLAGS_SENDRECEIVE: UINT32 = LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE,
        /// `LmqTransportControl`, IPC: input a `ULONG` retry interval in
        /// milliseconds (1 ..= 86,400,000; default 100).
        LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS: ULONG = 1,
        /// `LmqTransportControl` (lwmq's own): input one or more
        /// `LMQ_PEERACCESSRULE`s; which peer users the transport accepts.
        /// Before the channel opens only.
        LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY: ULONG = 0x1_0001,
        /// `LmqTransportControl` (lwmq's own): input a `ULONG` number of
        /// nanoseconds (0 ..= 100,000,000) a waiting thread spins before it
        /// sleeps.
        LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS: ULONG = 0x1_0002,
        /// `LmqTransportControl` (lwmq's own, `tcp://`): input a `ULONG`
        /// number of milliseconds of silence after which the peer is
        /// declared dead (0 = off, 100 ..= 3,600,000; default 5,000).
        /// Before the channel opens only.
        LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS: ULONG = 0x1_0003,
        /// `LmqTransportControl` (lwmq's own, `tcp://`): input UTF-8 text,
        /// networks in CIDR form separated by commas or spaces (an empty
        /// text: any peer, the default); the peer addresses the transport
        /// talks to. Before the channel opens only.
        LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST: ULONG = 0x1_0004,
        /// Wait forever (timeouts are in milliseconds).
        INFINITE: UINT32 = 0xFFFF_FFFF,
        /// The API version: `MAKEWORD(major, minor)`, major in the low byte.
        LMQ_CURRENT_API_VERSION: WORD = 0x0001,
        /// Success.
        S_OK: HRESULT = 0,
        /// Success, with a "false" meaning (never returned by this library).
        S_FALSE: HRESULT = 1,
        /// Not implemented (never returned by a documented function).
        E_NOTIMPL: HRESULT = hresult(0x8000_4001),
        /// A required pointer is NULL.
        E_POINTER: HRESULT = hresult(0x8000_4003),
        /// Unspecified failure.
        E_FAIL: HRESULT = hresult(0x8000_4005),
        /// Internal error.
        E_UNEXPECTED: HRESULT = hresult(0x8000_FFFF),
        /// Access denied.
        E_ACCESSDENIED: HRESULT = hresult(0x8007_0005),
        /// Invalid handle.
        E_HANDLE: HRESULT = hresult(0x8007_0006),
        /// Out of memory.
        E_OUTOFMEMORY: HRESULT = hresult(0x8007_000E),
        /// Invalid argument.
        E_INVALIDARG: HRESULT = hresult(0x8007_0057),
        /// `HRESULT_FROM_WIN32` facility.
        FACILITY_WIN32: DWORD = 7,
        /// Win32 code: not supported.
        ERROR_NOT_SUPPORTED: DWORD = 50,
        /// Win32 code: a buffer is too small.
        ERROR_INSUFFICIENT_BUFFER: DWORD = 122,
        /// Win32 code: busy.
        ERROR_BUSY: DWORD = 170,
        /// Win32 code: already exists.
        ERROR_ALREADY_EXISTS: DWORD = 183,
        /// Win32 code: the operation was aborted.
        ERROR_OPERATION_ABORTED: DWORD = 995,
        /// Win32 code: not found.
        ERROR_NOT_FOUND: DWORD = 1168,
        /// Win32 code: the connection was aborted.
        ERROR_CONNECTION_ABORTED: DWORD = 1236,
        /// Win32 code: timeout.
        ERROR_TIMEOUT: DWORD = 1460,
        /// Win32 code: invalid state.
        ERROR_INVALID_STATE: DWORD = 5023,
    }
}

/// The reference's `LQM_` spelling has this `LMQ_` alias.
pub type LMQ_MESSAGECALLBACKREASON = LQM_MESSAGECALLBACKREASON;

/// The external-frame callback (`LmqAppendExternalFrame`): in C,
/// `LMQ_MESSAGECALLBACK` is the function type and `PLMQ_MESSAGECALLBACK`
/// a pointer to it. It may be called from any thread, including the
/// library's service threads, and must not call back into the library for
/// the same message.
pub type PLMQ_MESSAGECALLBACK = Option<
    unsafe extern "C" fn(
        Reason: LQM_MESSAGECALLBACKREASON,
        Data: PCVOID,
        DataSize: UINT64,
        Context: PVOID,
    ) -> HRESULT,
>;

/// A transport buffer of a raw channel (`LmqRawChannel*Buffer`). Owned by
/// the library. After `LmqRawChannelGetBuffer`, `BufferSizeBytes` is the
/// buffer's size: set it to the number of bytes to send before
/// `LmqRawChannelSendBuffer`. After `LmqRawChannelReceiveBuffer` it is the
/// number of bytes received. (In C `Buffer` is `const PBYTE`: the pointer
/// is constant, the bytes are not.)
#[repr(C)]
pub struct LMQ_TRANSPORTBUFFER {
    /// Usable length in bytes.
    pub BufferSizeBytes: SIZE_T,
    /// The buffer's memory.
    pub Buffer: PBYTE,
}
/// Pointer to an `LMQ_TRANSPORTBUFFER`.
pub type PLMQ_TRANSPORTBUFFER = *mut LMQ_TRANSPORTBUFFER;

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
/// Pointer to an `LMQ_TRANSPORTBUFFERLIMITS`.
pub type PLMQ_TRANSPORTBUFFERLIMITS = *mut LMQ_TRANSPORTBUFFERLIMITS;

/// Frame enumeration hint (`LmqGetFrameData`): caller-allocated, opaque,
/// initialised with `LmqInitFrameEnumHint`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LMQ_MESSAGEFRAMEENUMHINT {
    /// Library use only.
    pub Reserved: [UINT64; 4],
}
/// Pointer to an `LMQ_MESSAGEFRAMEENUMHINT`.
pub type PLMQ_MESSAGEFRAMEENUMHINT = *mut LMQ_MESSAGEFRAMEENUMHINT;

/// A rule of `LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY` (lwmq's own).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LMQ_PEERACCESSRULE {
    /// An `LMQ_PEERACCESS` value.
    pub Access: LMQ_PEERACCESS,
    /// The user or group id (`USER`, `GROUP`); 0 otherwise.
    pub Id: ULONG,
}

/// The Windows `FILETIME`: an NT time (100 ns ticks since 1601-01-01 UTC)
/// in two halves.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FILETIME {
    /// Low 32 bits.
    pub dwLowDateTime: DWORD,
    /// High 32 bits.
    pub dwHighDateTime: DWORD,
}

/// The Windows `PROCESSOR_NUMBER` (`LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PROCESSOR_NUMBER {
    /// Processor group: 0 on Linux.
    pub Group: WORD,
    /// CPU number within the group (the Linux CPU number).
    pub Number: BYTE,
    /// Must be zero.
    pub Reserved: BYTE,
}

/// The Windows `GROUP_AFFINITY` (`LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GROUP_AFFINITY {
    /// One bit per CPU of the group (bit `n`: Linux CPU `n`).
    pub Mask: KAFFINITY,
    /// Processor group: 0 on Linux.
    pub Group: WORD,
    /// Must be zero.
    pub Reserved: [WORD; 3],
}
