#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30: the CI smoke
# run), one after another. New inputs go to a scratch directory, so the
# committed seed corpora in fuzz/corpus/ stay as they are; findings go to
# fuzz/artifacts/<target>/ and make this script fail.
#
#   .ci-extra/fuzz.sh          # 30 s per target
#   .ci-extra/fuzz.sh 600      # 10 minutes per target
#
# Needs the nightly toolchain (libFuzzer instrumentation); without it the
# script prints a SKIP line and succeeds.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
targets=(descriptor_parse handshake_decode ring_consumer wire_decode tcp_frames)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "SKIP fuzz: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  if ! cargo install cargo-fuzz --locked; then
    echo "SKIP fuzz: cargo-fuzz is not installed and could not be installed"
    exit 0
  fi
fi
# fuzz/ is its own workspace with its own target directory (fuzz/target).
unset CARGO_TARGET_DIR
cargo +nightly fuzz build
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "$scratch/$t"
  echo "== fuzz $t for ${secs}s"
  start=$(date +%s)
  log="$scratch/$t.log"
  if cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    status=0
  else
    status=$?
    tail -n 60 "$log"
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$log" || true
  echo "== fuzz $t: exit $status after $(( $(date +%s) - start ))s"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $t found a failure (see fuzz/artifacts/$t/)" >&2
    exit "$status"
  fi
done
