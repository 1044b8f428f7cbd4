#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets in fuzz/ (cargo fuzz, libFuzzer).
#
#   bash tools/fuzz.sh [RUNS] [TARGET ...]
#
# RUNS is the number of executions per target (default 10000000, the count
# docs/reliability.md reports); no TARGET means every target. Each target
# starts from its committed seeds in fuzz/seeds/<target>/, the test fixtures
# of its kind, and the corpus earlier runs grew in fuzz/corpus/<target>/
# (not committed). A crash leaves its input in fuzz/artifacts/<target>/ and
# fails the script; turn it into a regression test in the ordinary suite.
# Needs a nightly toolchain (`cargo +nightly`): without one it says so and
# exits 0, so CI on a stable-only machine passes and says plainly why nothing
# was fuzzed. cargo-fuzz is installed (pinned) when missing.
#
# LSTMRT_FUZZ_SECONDS=N also stops each target after N seconds, whichever
# comes first (libFuzzer's -max_total_time; the per-target line says how many
# executions ran): CI's smoke run uses it so a slow target cannot take minutes.
#
# LSTMRT_FUZZ_SANITIZER=address (the default) builds with AddressSanitizer and
# LeakSanitizer, which catch what the kernels' unsafe code could do wrong;
# =none builds without them but with overflow checks and debug assertions
# (fuzz/target-none/), about three times as many executions per second: the
# long runs in docs/reliability.md were made both ways.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-10000000}"
shift || true
all=(model_file tensor_payload state_blob torch_save safetensors onnx keras npy csv stream_lines arch wav)
targets=("${@:-${all[@]}}")

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain here (cargo +nightly fails): fuzzing skipped"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz 0.13.2"
    # --debug: the driver only runs cargo, and an unoptimised build of it
    # takes two thirds of the time (19.5 s against 29.1 s on a 2-core Zen 4).
    if ! cargo install cargo-fuzz --locked --debug --version 0.13.2 >/dev/null; then
        echo "fuzz: cargo-fuzz could not be installed here: fuzzing skipped"
        exit 0
    fi
fi

# Extra seed folders per target (libFuzzer reads them recursively and only
# adds to the first corpus folder, never to these).
extra() {
    case "$1" in
        torch_save) echo tests/fixtures/convert/pytorch ;;
        safetensors) echo tests/fixtures/pytorch_packed ;;
        onnx) echo tests/fixtures/convert/onnx tests/fixtures/convert/onnx_node tests/fixtures/convert/onnx_lengths tests/fixtures/convert/onnx_initial ;;
        keras) echo tests/fixtures/convert/keras ;;
        npy) echo tests/fixtures/pytorch_packed ;;
    esac
}

sanitizer="${LSTMRT_FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address) build=(-O) dir=fuzz/target ;;
    none) build=(-O -a -s none --target-dir target-none) dir=fuzz/target-none ;;
    *) echo "fuzz: LSTMRT_FUZZ_SANITIZER must be address or none, not $sanitizer" >&2; exit 2 ;;
esac
(cd fuzz && cargo +nightly fuzz build "${build[@]}" >/dev/null 2>&1) || (cd fuzz && cargo +nightly fuzz build "${build[@]}")
cap=()
[ -n "${LSTMRT_FUZZ_SECONDS:-}" ] && cap=("-max_total_time=$LSTMRT_FUZZ_SECONDS")
status=0
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
    log="fuzz/artifacts/$t/last-run-$sanitizer.log"
    start=$SECONDS
    # shellcheck disable=SC2046 # extra() lists folders, split on spaces
    seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    if "$dir"/x86_64-unknown-linux-gnu/release/"$t" "$corpus" "${seeds[@]}" $(extra "$t") \
        -runs="$runs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" "${dict[@]}" "${cap[@]}" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        status=1
    fi
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    echo "fuzz $t ($sanitizer): $result; ${done_line:-no Done line}; ${cov:-no coverage line}; corpus $(find "$corpus" -type f | wc -l) files; $((SECONDS - start)) s"
done
exit $status
