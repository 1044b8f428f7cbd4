#!/usr/bin/env bash
# Runs the tests of lstmrt's unsafe code that miri can execute: the worker
# pool (lifetime-erased jobs, the spin barrier, a panicking participant),
# the aligned buffers, and, with `--all`, the concurrency test (one model
# shared by 3 threads of 2 states each at miri's sizes: about 5 minutes).
# Miri runs no `asm!` and no AVX code: the kernels run on the tier its
# baseline target has (SSE2, the `wide` tier), denormal flushing is skipped.
#
#   bash tools/miri.sh [--all]
#
# Needs nightly with the miri and rust-src components; without them it says
# so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup +nightly component add miri rust-src >/dev/null 2>&1 || true
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri: not available here (cargo +nightly miri fails, and the component could not be added): skipped"
    exit 0
fi
if ! cargo +nightly miri setup >/dev/null 2>&1; then
    echo "miri: cannot build its sysroot here (is rust-src installed?): skipped"
    exit 0
fi
cargo +nightly miri test -p lstmrt --lib threads
cargo +nightly miri test -p lstmrt-kernels --lib aligned
if [ "${1:-}" = "--all" ]; then
    cargo +nightly miri test -p lstmrt --test api eight_threads
fi
