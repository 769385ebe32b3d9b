#!/usr/bin/env bash
# Loom model checks (run by .ci/run): the ring's publication and
# sleep/wake handshake (crates/lwmq/tests/loom_ring.rs), the async
# readiness signal (loom_readiness.rs) and the lock-free
# queues' models (crates/lwmq/src/queue/*, `loom_tests` modules).
# A separate target directory keeps the --cfg loom build from invalidating
# the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
cargo test --release -p lwmq --test loom_ring
cargo test --release -p lwmq --test loom_readiness
cargo test --release -p lwmq --test loom_bias
cargo test --release -p lwmq --lib loom
