#!/usr/bin/env bash
# The runtime's tests on AArch64 (phones, single-board computers, Graviton),
# run under qemu-user: the `wide` tier's NEON code, the portable int8 form,
# the stages and the denormal flushing (FPCR.FZ) proven correct there. No
# speed is measured under an emulator.
#
#   bash tools/arm_tests.sh
#
# Installs what it needs when missing (Debian: qemu-user,
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross; rustup's aarch64 target);
# where they cannot be had it says so and exits 0, unless
# LSTMRT_REQUIRE_ARM=1. Left out, for time or the emulator: int8_accuracy
# (4 minutes under qemu; the int8 forms are checked bit for bit by int8_tiles
# and against the reference in chunks and lengths), no_alloc (6 minutes
# under qemu; allocation does not depend on the architecture), the proptest
# streams, and fork.rs (qemu-user cannot exec the child without binfmt_misc).
# Built without debug info (a faster link; nothing is debugged here).
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
skip() {
    if [ -n "${LSTMRT_REQUIRE_ARM:-}" ]; then
        echo "arm: $1" >&2
        exit 1
    fi
    echo "arm: skipped: $1"
    exit 0
}
if ! command -v qemu-aarch64 >/dev/null 2>&1 || ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
    packages=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
    apt-get install -y -q "${packages[@]}" >/dev/null 2>&1 \
        || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${packages[@]}" >/dev/null 2>&1) \
        || skip "qemu-user and an aarch64 cross linker could not be installed (apt-get install ${packages[*]})"
fi
if ! rustup target list --installed 2>/dev/null | grep -q "^$target\$"; then
    rustup target add "$target" >/dev/null 2>&1 || skip "rustup target add $target failed"
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export LSTMRT_REQUIRE_PYTHON_READER=1
export CARGO_PROFILE_RELEASE_DEBUG=0

cargo test --release --target "$target" -p lstmrt-kernels --lib
tests=(activations kernels_vs_reference int8_tiles chunks lengths initial_state pytorch_golden vad api bad_files python_reader)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
cargo test --release --target "$target" -p lstmrt --lib "${args[@]}"
