//! lwmq: LwMQ messaging for Linux.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod descriptor;
