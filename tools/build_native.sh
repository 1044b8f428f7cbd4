#!/usr/bin/env bash
# Builds the native tools and libraries (target/release/lstm-run,
# lstm-convert, liblstmrt_capi.so and .a) exactly as the test suite
# (tools/test.sh) builds them: `cargo test --release --workspace` resolves
# the workspace's features together, and a `cargo build -p ...` of a few
# packages resolves others, which recompiles every crate a second time
# (3-4 minutes on 2 cores). `cargo test --no-run` alone does not put the
# C library (liblstmrt_capi.so/.a) or the binaries in target/release, so
# this is `cargo build` of the same targets: the same features, the test
# binaries reused; after tools/test.sh it only links what is missing.
#
#   bash tools/build_native.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --lib --bins --tests
