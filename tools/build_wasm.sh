#!/usr/bin/env bash
# Builds lstmrt for WebAssembly into the npm package's folder, crates/wasm/npm:
#   lstmrt.wasm          simd128 (every current browser, Node 16.4+)
#   lstmrt-relaxed.wasm  simd128 + relaxed SIMD (fused multiply-add), which
#                        lstmrt.js loads where the engine validates it
#   silero_vad.lstm      Silero VAD (f32), with LICENSE-silero-vad (MIT)
#   silero_vad_f16.lstm  the same in f16 (half the bytes; widened at load)
# and prints their sizes (raw, gzip). Needs the wasm32-unknown-unknown target
# (added here when missing). Usage: bash tools/build_wasm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
npm_dir=crates/wasm/npm

# With a nightly toolchain and its rust-src, the standard library is built
# with panics that abort at once: a panic in wasm32-unknown-unknown prints
# nowhere anyway, and its formatting code is 28 KB of the .wasm. Without
# them, the stable toolchain (the same behaviour, a larger file).
toolchain=stable
if cargo +nightly --version >/dev/null 2>&1; then
    rustup target add --toolchain nightly wasm32-unknown-unknown >/dev/null 2>&1 || true
    rustup component add --toolchain nightly rust-src >/dev/null 2>&1 || true
    if rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src' \
        && rustup +nightly target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
        toolchain=nightly
    fi
fi
if [[ $toolchain == stable ]] && ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    rustup target add wasm32-unknown-unknown
fi

build() { # FEATURES OUTPUT
    local dir="target/wasm-$2" flags="-C target-feature=$1"
    if [[ $toolchain == nightly ]]; then
        RUSTFLAGS="$flags -Zunstable-options -Cpanic=immediate-abort" cargo +nightly build --quiet --profile wasm \
            --target wasm32-unknown-unknown -p lstmrt-wasm --target-dir "$dir" -Zbuild-std=std,panic_abort
    else
        RUSTFLAGS="$flags" cargo build --quiet --profile wasm --target wasm32-unknown-unknown -p lstmrt-wasm --target-dir "$dir"
    fi
    cp "$dir/wasm32-unknown-unknown/wasm/lstmrt_wasm.wasm" "$npm_dir/$2.wasm"
}
# Each build in a target folder of its own, so they never rebuild each other.
build +simd128 lstmrt
build +simd128,+relaxed-simd lstmrt-relaxed
echo "built with the $toolchain toolchain"

cp models/silero_vad/silero_vad.lstm "$npm_dir/silero_vad.lstm"
cp models/silero_vad/LICENSE "$npm_dir/LICENSE-silero-vad"
# The f16 model, converted from the same ONNX export as the f32 one.
bash tools/build_native.sh
target/release/lstm-convert models/silero_vad/silero_vad_16k_op15.onnx --arch models/silero_vad/arch-onnx.json \
    --dtype f16 -o "$npm_dir/silero_vad_f16.lstm" >/dev/null

for f in lstmrt.wasm lstmrt-relaxed.wasm lstmrt.js vad.js vad-worklet.js silero_vad.lstm silero_vad_f16.lstm; do
    printf '%-22s %8d bytes, %8d gzip\n' "$f" "$(wc -c <"$npm_dir/$f")" "$(gzip -9c "$npm_dir/$f" | wc -c)"
done
