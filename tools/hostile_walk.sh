#!/usr/bin/env bash
# Walks the command-line surface with inputs whose sizes are legal but large
# (or past a limit), each run under a 4 GB address-space limit: every run
# must end with exit code 0 or 2 (never an abort or a signal) within 20 s.
# Run by hand (it writes a few GB of sparse files under a scratch folder):
#
#   cargo build --release -p lstmrt-cli -p lstm-train && bash tools/hostile_walk.sh
#
# Prints one line per case: exit code, seconds, and stderr's first line.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=target/release
tmp=$(mktemp -d /tmp/lstmrt-walk.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

walk() {
    local name=$1
    shift
    local start=$SECONDS
    prlimit --as=4000000000 "$@" >"$tmp/out" 2>"$tmp/err"
    local code=$?
    local took=$((SECONDS - start))
    local verdict=ok
    if [[ $code -ne 0 && $code -ne 2 ]] || ((took >= 20)); then
        verdict=FAIL
        fail=1
    fi
    printf '%-4s %-44s exit %3d  %3ds  %s\n' "$verdict" "$name" "$code" "$took" "$(head -c 160 "$tmp/err" | head -1)"
}

# A .npy header for a float32 array of this shape, then a sparse body.
npy() {
    local path=$1 shape=$2 bytes=$3
    python3 - "$path" "$shape" "$bytes" <<'EOF'
import sys
path, shape, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h.encode())
    f.truncate(f.tell() + n)
EOF
}

# A 16-bit mono WAV header at 16 kHz declaring `bytes` of data, sparse body.
wav() {
    python3 - "$1" "$2" <<'EOF'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
fmt = struct.pack('<HHIIHH', 1, 1, 16000, 32000, 2, 16)
head = b'RIFF' + struct.pack('<I', 36 + n) + b'WAVE' + b'fmt ' + struct.pack('<I', 16) + fmt + b'data' + struct.pack('<I', n)
with open(path, 'wb') as f:
    f.write(head)
    f.truncate(len(head) + n)
EOF
}

model=models/pronoun.lstm
vad=models/silero_vad/silero_vad.lstm
cp "$vad" "$tmp/vad.lstm"

# lstm-run --bench: flags at the top of their ranges.
walk "bench --batch 1000000" $bin/lstm-run $model --bench --batch 1000000
walk "bench --stream --batch 1000000" $bin/lstm-run $model --bench --stream --batch 1000000
walk "bench --streams 1000000" $bin/lstm-run $model --bench --streams 1000000
walk "bench --steps 100000000" $bin/lstm-run $model --bench --steps 100000000
walk "bench vad --batch 1000000" $bin/lstm-run $vad --bench --batch 1000000
walk "bench vad --steps 100000000" $bin/lstm-run $vad --bench --steps 100000000
walk "bench --threads 1024" $bin/lstm-run $model --bench --threads 1024 --batch 8 --steps 20 --seconds 0.2
# Inputs near the 4 GiB file limit (sparse: zeros), past what memory holds.
npy "$tmp/big.npy" "(268435456, 2)" $((268435456 * 2 * 4))
walk "run a 2 GiB float32 .npy" $bin/lstm-run $model "$tmp/big.npy"
npy "$tmp/mid.npy" "(4194304, 32)" $((4194304 * 32 * 4))
walk "run a 512 MiB float32 .npy, -o .npy" $bin/lstm-run $model "$tmp/mid.npy" -o "$tmp/o.npy"
walk "run a 512 MiB float32 .npy, -o .csv" $bin/lstm-run $model "$tmp/mid.npy" -o "$tmp/o.csv"
wav "$tmp/big.wav" $((2000 * 1024 * 1024))
walk "vad on a 2 GB WAV" $bin/lstm-run $vad "$tmp/big.wav" --segments
wav "$tmp/mid.wav" $((256 * 1024 * 1024))
walk "vad on a 256 MB WAV" $bin/lstm-run $vad "$tmp/mid.wav" -o "$tmp/p.npy"
npy "$tmp/sig.npy" "(1073741824,)" $((1073741824 * 4))
walk "vad on a 4 GiB .npy signal" $bin/lstm-run $vad "$tmp/sig.npy"
walk "--generate 100000000" $bin/lstm-run $model --generate 100000000 --prompt "Anna" --seed 1
# lstm-convert: large sources.
truncate -s 3G "$tmp/big.pt"
walk "convert a 3 GB source" $bin/lstm-convert "$tmp/big.pt" -o "$tmp/x.lstm"
truncate -s 17G "$tmp/huge.onnx"
walk "convert a 17 GB source" $bin/lstm-convert "$tmp/huge.onnx" -o "$tmp/x.lstm"
# lstm-train: options at and past their limits, large data.
walk "train --hidden 2^32+1" $bin/lstm-train train --quiet --out "$tmp/t.lstm" --hidden 4294967297
walk "train --train-size max" $bin/lstm-train train --quiet --out "$tmp/t.lstm" --train-size 18446744073709551615
walk "train --distance 2..65536 x 10000" $bin/lstm-train train --quiet --out "$tmp/t.lstm" --distance 2..65536 --train-size 10000
walk "generate --count 16777216 --distance 65536" $bin/lstm-train generate pronoun --count 16777216 --distance 65536
truncate -s 3G "$tmp/big.txt"
walk "train lm on a 3 GB text" $bin/lstm-train train --quiet --task lm --data "$tmp/big.txt" --out "$tmp/t.lstm"
python3 -c "import sys; open(sys.argv[1],'w').write(('the quick brown fox jumps over the lazy dog. ' * 400000)[:16777216])" "$tmp/limit.txt"
walk "train lm on 16 MiB of text (the limit)" $bin/lstm-train train --quiet --task lm --data "$tmp/limit.txt" --out "$tmp/t.lstm" --steps 1 --eval-every 1 --hidden 8 --embed 4 --seq-len 64
truncate -s 1G "$tmp/mid.txt"
walk "train lm on a 1 GB text" $bin/lstm-train train --quiet --task lm --data "$tmp/mid.txt" --out "$tmp/t.lstm" --steps 1
exit $fail
