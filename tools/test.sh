#!/usr/bin/env bash
# The test suite: what the README's test command runs and .ci/run calls.
# Needs Rust and python3 with pip; prepares the rest itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# The spec-conformance test (crates/lstmrt/tests/python_reader.rs) runs
# tools/lstmfile.py, which needs numpy: the test finds it, or installs it
# into target/pydeps itself. Here it must run, not skip.
export LSTMRT_REQUIRE_PYTHON_READER=1

# Every crate, optimised (the kernel tests are heavy).
cargo test --release --workspace

# The runtime as an embedder builds it by default: everything at opt-level 0
# (the `embedder` profile: the workspace's dev profile optimises the kernels),
# called from threads with 2 MiB stacks.
LSTMRT_REQUIRE_EMBEDDER_PROFILE=1 cargo test -p lstmrt-embed-check --profile embedder
