#!/usr/bin/env bash
# The WebAssembly build and the npm package, tested as CI runs them:
#   1. tools/build_wasm.sh (both .wasm builds, the Silero models);
#   2. the package's Node tests (crates/wasm/npm/test/) on the simd128
#      build, then on the relaxed-SIMD build (Node 20 enables relaxed SIMD
#      with a flag): outputs against the native lstm-run;
#   3. the demo page in headless Chromium with a fake microphone playing
#      models/silero_vad/speech.wav (tools/web_test.mjs), when Chromium is
#      installed (.ci/run installs Debian's package; elsewhere it says why
#      it is skipped). playwright-core is installed under target/web-test/.
# Needs Node 20+ and npm. Usage: bash tools/wasm_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/build_wasm.sh
bash tools/build_native.sh   # the native tools the tests compare with

echo "=== npm package tests, simd128 build"
(cd crates/wasm/npm && node --test test/)
echo "=== npm package tests, relaxed-SIMD build"
(cd crates/wasm/npm && node --experimental-wasm-relaxed-simd --test test/)

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x $chromium ]]; then
    echo "=== browser test skipped: no Chromium at $chromium (apt-get install chromium; or set CHROMIUM)"
    exit 0
fi
if [[ ! -f target/web-test/node_modules/playwright-core/index.mjs ]]; then
    mkdir -p target/web-test
    (cd target/web-test && npm init -y >/dev/null && npm install --no-audit --no-fund --silent playwright-core@1.64.1)
fi
echo "=== demo page in headless Chromium, fake microphone"
CHROMIUM="$chromium" node tools/web_test.mjs --screenshot target/web-test/demo.png
