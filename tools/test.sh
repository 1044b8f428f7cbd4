#!/usr/bin/env bash
# The test suite: what the README's test command runs and .ci/run calls.
# Needs Rust and python3 with pip; prepares the rest itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# The spec-conformance test (crates/lstmrt/tests/python_reader.rs) runs
# tools/lstmfile.py, which needs numpy. Without it, install numpy into
# target/pydeps (not into the system's Python) and point PYTHONPATH there.
if ! python3 -c 'import numpy' 2>/dev/null; then
    deps="$PWD/target/pydeps"
    if ! PYTHONPATH="$deps" python3 -c 'import numpy' 2>/dev/null; then
        echo "tools/test.sh: installing numpy into $deps for the Python reader test"
        python3 -m pip install --quiet --disable-pip-version-check --target "$deps" numpy
    fi
    export PYTHONPATH="$deps${PYTHONPATH:+:$PYTHONPATH}"
fi

# Every crate, optimised (the kernel tests are heavy).
cargo test --release --workspace

# The runtime as an embedder builds it by default: the dev profile
# (opt-level 0), called from threads with 2 MiB stacks.
cargo test -p lstmrt-embed-check
