//! The transport conformance suite: every behaviour a channel's user relies
//! on, written once and run for every scheme (`ipc://` and `tcp://`) with
//! real processes (the `lwmq-peer` raw peer and the `lwmq-msg-peer`
//! messaging peer, which check the sequence number and checksum of every
//! payload and print `BAD` for a corrupt, duplicated or reordered one).
//!
//! Each behaviour is a function of [`Scheme`] in `suite.rs`;
//! [`conformance!`] makes one test per scheme, named `<behaviour>::<scheme>`
//! (`cargo test -p lwmq-harness --test conformance tcp` runs the `tcp://`
//! half). Behaviours that only one transport has (heartbeats, the proxy
//! faults, shared-memory checks) live in their own test files.

#[path = "../common/mod.rs"]
mod common;
mod suite;

use common::Scheme;

/// One test per scheme for each behaviour of `suite`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn ipc() {
                    super::suite::$name(super::Scheme::Ipc)
                }
                #[test]
                fn tcp() {
                    super::suite::$name(super::Scheme::Tcp)
                }
            }
        )*
    };
}

conformance!(
    raw_client_first_then_server_delivers_everything,
    raw_server_first_then_client_delivers_everything,
    messaging_client_first_then_server_delivers_everything,
    second_server_is_refused_in_use_while_the_first_keeps_working,
    refusal_reason_is_visible_on_both_sides,
    connection_events_name_the_peer_and_why_it_left,
    incompatible_directions_are_refused_on_both_sides,
    raw_sender_killed_mid_stream_then_restarted,
    raw_receiver_killed_mid_stream_loss_is_bounded,
    messaging_sender_killed_mid_stream_then_restarted,
    messaging_receiver_killed_mid_stream_then_restarted,
    messaging_mixed_sizes_survive_kill9_of_either_side,
    flush_waits_until_the_peer_has_taken_everything,
    close_with_linger_delivers_what_was_posted,
    windows_of_buffers_on_both_sides_keep_order,
    idle_pair_uses_almost_no_cpu,
);
