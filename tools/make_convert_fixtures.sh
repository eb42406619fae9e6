#!/usr/bin/env bash
# Makes tests/data/convert/llama_quantize.json: what llama.cpp's own llama-quantize writes
# for the test model, tensor by tensor (type and sha256 of the bytes), for q4_k_m, q4_0,
# q6_k and q8_0, from the float32 GGUF that `ropewalk convert` makes of the Hugging Face
# folder (tests/convert_smollm.rs proves that file equal to the original's values).
# tests/convert_smollm.rs checks that ropewalk writes the same bytes. Needs tools/setup.sh
# and tools/build_llama_cpp.sh; the result is committed, so tests need neither llama.cpp
# nor this script.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build_llama_cpp.sh >/dev/null
QUANTIZE=.cache/llama.cpp/build/bin/llama-quantize
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release --quiet
target/release/ropewalk convert .cache/hf/smollm2-f32 -o "$TMP/f32.gguf" --outtype f32 >/dev/null
for t in Q4_K_M Q4_0 Q6_K Q8_0; do
    "$QUANTIZE" "$TMP/f32.gguf" "$TMP/$t.gguf" "$t" 2 >"$TMP/$t.log" 2>&1 || { tail "$TMP/$t.log"; exit 1; }
done
.cache/venv/bin/python - "$TMP" >tests/data/convert/llama_quantize.json <<'PY'
import hashlib, json, sys
import numpy as np
import gguf
out = {"source": "llama-quantize of llama.cpp (llama-cpp-python 0.3.36 sdist), no imatrix, from ropewalk's f32 conversion of .cache/hf/smollm2-f32",
       "tensors": {}}
for t in ["Q4_K_M", "Q4_0", "Q6_K", "Q8_0"]:
    r = gguf.GGUFReader(f"{sys.argv[1]}/{t}.gguf")
    out["tensors"][t.lower()] = [
        [x.name, int(x.tensor_type), hashlib.sha256(np.ascontiguousarray(x.data).view(np.uint8).tobytes()).hexdigest()]
        for x in r.tensors]
# One tensor a line, so that a change shows as a readable diff.
print("{\n\"source\": %s,\n\"tensors\": {" % json.dumps(out["source"]))
for i, (t, rows) in enumerate(out["tensors"].items()):
    body = ",\n".join(json.dumps(r) for r in rows)
    print("%s: [\n%s\n]%s" % (json.dumps(t), body, "," if i + 1 < len(out["tensors"]) else ""))
print("}}")
PY
echo "wrote tests/data/convert/llama_quantize.json"
