#!/usr/bin/env bash
# ThreadSanitizer over the worker pool's tests and the concurrency test (one
# model shared by 8 threads of 4 states each, pools of 2 inside): data races
# in the pool, the barrier or the shared model fail the run.
#
#   bash tools/tsan.sh
#
# Needs nightly with rust-src (the standard library is rebuilt with TSan,
# into target/tsan); without it, says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "tsan: no nightly toolchain here: skipped"
    exit 0
fi
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
    rustup +nightly component add rust-src >/dev/null 2>&1 || true
fi
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "tsan: the nightly rust-src component is missing and could not be added: skipped"
    exit 0
fi
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread" TSAN_OPTIONS="halt_on_error=1"
tsan() { cargo +nightly test -Zbuild-std --target "$target" --target-dir target/tsan -p lstmrt "$@"; }
tsan --lib threads
tsan --test api eight_threads
# The stream-batch tests but the 32-stream one (over 20 minutes at TSan's
# debug speed; the 8-thread test above covers the same pool).
tsan --test streams -- --skip thirty_two
