#!/usr/bin/env bash
# Miri over the tests of lwmq's unsafe code that make no system call Miri
# lacks. Miri has no memfd, no mmap of a shared file, no futex on shared
# memory, no sockets and no membarrier, so the ring, the ipc transport, raw
# channels and the messaging channel's receive path cannot run under it.
# What runs:
#   - queue::mono: the lock-free SPSC block queue (raw pointers, Box
#     handover, MaybeUninit slots);
#   - message: external frames (user memory with release callbacks, an
#     unsafe Send/Sync contract), shared and copy-on-write frames;
#   - wire: the encoder's raw-pointer writes (SharedBytesMut), the
#     decoder's views of memory another process may write (SharedBytes:
#     atomic byte loads, copies out, uninitialised copy-out into new
#     buffers), the read-once index, and a view rewritten between
#     validation and delivery (wire::tests); descriptor decoding;
#   - message: the decoded-message constructors and frame copy-out; the
#     conversions into frames and messages, frames moved out as Bytes;
#   - codec (feature "serde"): typed messages decoded from a lent view;
#   - raw: the raw-buffer guards' copies in and out (raw pointers, no
#     reference over a buffer), over sides that keep buffers on the heap;
#   - liblwmq raw: the library-owned LMQ_TRANSPORTBUFFER structs handed to
#     C (Box::into_raw, reuse, free).
#
#   .ci-extra/miri.sh          # the CI subset (about 1-2 minutes)
#   .ci-extra/miri.sh --full   # also the slow tests: the threaded SPSC
#                              # test and the large property tests
#                              # (about 10 minutes here)
#
# Needs the nightly toolchain with the miri component; prints a SKIP line
# and succeeds without it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  echo "SKIP miri: no nightly toolchain with miri (rustup +nightly component add miri)"
  exit 0
fi
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
# Isolation off: tests read the clock (timeouts, NT time).
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
lib_tests=(queue::mono::tests message::tests::external message::tests::share
  message::tests::bytes_frame message::tests::static_frame message::tests::with_hooks
  message::tests::timestamps message::tests::frames_read_and_copy_out
  message::tests::decoded_messages_take_their_sizes_from_their_frames
  message::tests::conversions descriptor::tests wire::tests:: raw::tests)
# Minutes each under Miri: fine natively, too slow for CI.
slow=(spsc_threads round_trip_clubbed decoding_mutated_buffers_never_panics
  many_messages_club_in_order encoded_len_is_exact_and_push_is_all_or_nothing
  round_trip_one_thousand_frames an_index_is_reused_and_emptied_by_a_bad_buffer
  an_index_gives_back_what_a_buffer_of_tiny_messages_needed
  a_message_of_too_many_frames_is_refused_not_encoded
  round_trip_small_messages loaned_messages_round_trip_between_pushed_ones
  decoding_random_bytes_never_panics any_buffer_is_read_at_most_once_per_byte
  a_rewriting_peer_is_decoded_as_first_read)
# Needs memfd_create, which Miri does not have.
nosys=(--skip section_names_fit_the_memfd_limit)
if [ "${1:-}" = "--full" ]; then
  cargo +nightly miri test -q -p lwmq --lib -- "${lib_tests[@]}" "${nosys[@]}"
  cargo +nightly miri test -q -p lwmq --features serde --lib -- codec::tests
else
  skips=()
  for t in "${slow[@]}"; do skips+=(--skip "$t"); done
  cargo +nightly miri test -q -p lwmq --lib -- "${lib_tests[@]}" "${skips[@]}" "${nosys[@]}"
  cargo +nightly miri test -q -p lwmq --features serde --lib -- codec::tests::errors \
    codec::tests::small codec::tests::a_value
fi
cargo +nightly miri test -q -p liblwmq --lib -- raw::tests
