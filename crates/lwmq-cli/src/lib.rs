//! The `lwmq` command as a library: each subcommand is a module with its
//! clap `Args` struct and a `run` function, so that other tools (the
//! comparison benchmark `lwmq-bench`) run exactly the same measuring code
//! as the command line does.

#![warn(missing_docs)]

pub mod chat;
pub mod check;
pub mod demo;
pub mod docs;
pub mod failure;
pub mod lat;
pub mod limits;
pub mod logging;
pub mod ls;
pub mod measure;
pub mod peer;
pub mod raw_lat;
pub mod raw_thr;
pub mod stat;
pub mod thr;
pub mod waiting;
