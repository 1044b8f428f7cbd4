#!/usr/bin/env bash
# Builds the C ABI (liblstmrt_capi.so and .a), compiles examples/c/stream.c
# (shared and static) and examples/c/streams.cpp with the system compilers
# against include/lstmrt.h, and checks that each prints, for several texts,
# the same "Prediction:" line as `lstm-run --text`. Also writes
# target/release/lstmrt.pc (pkg-config) and, where pkg-config exists,
# compiles once more through it.
#
#   bash tools/c_examples.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/build_native.sh
lib=target/release
out=target/c-examples
mkdir -p "$out"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
sed -e "s|@PREFIX@|$PWD|" -e "s|@VERSION@|$version|" crates/capi/lstmrt.pc.in |
    sed -e "s|^libdir=.*|libdir=$PWD/$lib|" -e "s|^includedir=.*|includedir=$PWD/include|" >"$lib/lstmrt.pc"

cc=${CC:-cc}
cxx=${CXX:-c++}
warn=(-Wall -Wextra -Werror -O2)
"$cc" "${warn[@]}" -std=c11 -I include examples/c/stream.c -L "$lib" -llstmrt_capi -o "$out/stream"
"$cc" "${warn[@]}" -std=c11 -I include examples/c/stream.c "$lib/liblstmrt_capi.a" -lpthread -ldl -lm -o "$out/stream-static"
"$cxx" "${warn[@]}" -std=c++17 -I include examples/c/streams.cpp -L "$lib" -llstmrt_capi -o "$out/streams"
if command -v pkg-config >/dev/null; then
    # shellcheck disable=SC2046
    "$cc" "${warn[@]}" -std=c11 examples/c/stream.c $(PKG_CONFIG_PATH="$lib" pkg-config --cflags --libs lstmrt) -o "$out/stream-pc"
fi
export LD_LIBRARY_PATH="$PWD/$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

texts=(
    "Anna found an old map in the attic. The paper was brittle and the ink had faded over many long years. Later"
    "the king said that"
    "Tom and his sister walked home. It was late and cold. Then"
    "she"
)
model=models/pronoun.lstm
expected=()
for text in "${texts[@]}"; do
    expected+=("$("$lib/lstm-run" "$model" --text "$text" | grep '^Prediction:')")
done
status=0
for i in "${!texts[@]}"; do
    for bin in stream stream-static $([[ -x $out/stream-pc ]] && echo stream-pc); do
        got=$("$out/$bin" "$model" "${texts[$i]}")
        if [[ "$got" != "${expected[$i]}" ]]; then
            echo "c_examples: $bin on text $i printed '$got', lstm-run printed '${expected[$i]}'" >&2
            status=1
        fi
    done
done
mapfile -t together < <("$out/streams" "$model" "${texts[@]}")
for i in "${!texts[@]}"; do
    if [[ "${together[$i]:-}" != "${expected[$i]}" ]]; then
        echo "c_examples: streams.cpp on text $i printed '${together[$i]:-}', lstm-run printed '${expected[$i]}'" >&2
        status=1
    fi
done
# A missing model: exit 2 and the runtime's message.
if "$out/stream" /nonexistent.lstm "x" 2>"$out/err.txt"; then
    echo "c_examples: a missing model was not refused" >&2
    status=1
fi
grep -q "LSTMRT_IO" "$out/err.txt" || { echo "c_examples: missing model: $(cat "$out/err.txt")" >&2; status=1; }
[[ $status == 0 ]] && echo "c_examples: stream.c (shared, static), streams.cpp: ${#texts[@]} texts, every line equal to lstm-run --text's"
exit $status
