#!/usr/bin/env bash
# Builds the native tools and libraries (target/release/lstm-run,
# lstm-convert, liblstmrt_capi.so and .a) exactly as the test suite
# (tools/test.sh) builds them: `cargo test --release --workspace` resolves
# the workspace's features together, and a `cargo build -p ...` of a few
# packages resolves others, which recompiles every crate a second time
# (3-4 minutes on 2 cores). After tools/test.sh this is a no-op.
#
#   bash tools/build_native.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace --no-run --quiet 2>/dev/null || cargo test --release --workspace --no-run
