//! liblwmq: the LwMQ C API for Linux.
//!
//! Builds `liblwmq.so` and `liblwmq.a`, whose functions have the names,
//! parameters and semantics of the Windows LwMQ library (`LmqCreateChannel`,
//! `LmqAddTransport`, `LmqPostMessage`, ...), declared in the headers LwMQ
//! programs include: `include/api-lwmq-messaging.h` and
//! `include/api-lwmq-time.h` (`include/lwmq.h` includes both). The headers
//! are written by hand to match the reference exactly; `tests/header.rs`
//! checks them against this crate's declarations. See `docs/c-api.md`.
//!
//! Layout: [`types`] (the C types and constants), [`error`] (status codes,
//! last-error text, the panic boundary), [`handle`] (the handle registry),
//! and the exports: [`api`] (initialisation, channels, queues, transports),
//! [`message`] (messages, posting, receiving), [`raw`] (direct buffers),
//! [`time`] (the clock functions of `api-lwmq-time.h`).
//!
//! Rules every export keeps: its body runs inside [`error::boundary`], so
//! no panic unwinds into C; every pointer argument is checked for NULL;
//! every enumeration value, struct size and descriptor is validated before
//! use; handles are looked up, never dereferenced.
#![warn(missing_docs)]
#![allow(non_snake_case)]

pub mod api;
pub mod error;
pub mod handle;
pub mod message;
pub mod raw;
pub mod time;
pub mod types;
