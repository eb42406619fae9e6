#!/usr/bin/env python3
"""The independent GGUF implementation ropewalk's tests compare against: the `gguf`
package (PyPI) that ships with llama.cpp.

  gguf_oracle.py describe FILE       JSON: header, every key with its type chain and value,
                                     every tensor with the sha256 of its raw bytes
  gguf_oracle.py dequant-hashes FILE JSON: tensor name -> sha256 of its values dequantized
                                     to little-endian float32 by gguf.quants
  gguf_oracle.py write FILE          writes a GGUF with every value type and several tensor
                                     types through gguf.GGUFWriter

Run with the venv that tools/setup.sh makes: .cache/venv/bin/python.
"""
import hashlib
import json
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as T


def describe(path):
    r = gguf.GGUFReader(path)
    fields = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue  # the reader's own entries for the header counts
        value = f.contents()
        if isinstance(value, float) and value != value:
            value = "nan"
        fields.append([f.name, [t.name for t in f.types], value])
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "dims": [int(d) for d in t.field.parts[3]],
            "n_bytes": int(t.n_bytes),
            "offset": int(t.data_offset),
            "sha256": hashlib.sha256(np.ascontiguousarray(t.data).view(np.uint8).tobytes()).hexdigest(),
        })
    version = int(r.fields["GGUF.version"].parts[-1][0])
    return {"version": version, "alignment": int(r.alignment), "data_offset": int(r.data_offset),
            "fields": fields, "tensors": tensors}


def dequant_hashes(path):
    r = gguf.GGUFReader(path)
    out = {}
    for t in r.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype("<f4", copy=False)
        out[t.name] = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    return out


def write(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "grüße, 世界 <|im_start|>\n")
    w.add_string("test.empty_string", "")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 1e-300)
    w.add_array("test.tokens", ["a", "Ġb", "<0x0A>", ""])
    w.add_key_value("test.scores", [0.5, -1.25, 3.0], T.ARRAY, T.FLOAT32)
    w.add_key_value("test.types", [1, 3, 6], T.ARRAY, T.INT32)
    w.add_array("test.flags", [True, False])
    w.add_array("test.nested", [[1, 2], [3]])
    rng = np.random.default_rng(7)
    w.add_tensor("f32", rng.standard_normal((3, 64)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((2, 32)).astype(np.float16))
    for name, qtype, shape in [("q8_0", Q.Q8_0, (4, 64)), ("q4_0", Q.Q4_0, (2, 64)),
                               ("q4_1", Q.Q4_1, (3, 32)), ("q5_0", Q.Q5_0, (1, 96)),
                               ("q5_1", Q.Q5_1, (2, 32))]:
        values = rng.standard_normal(shape).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)
    for name, qtype, shape in [("q4_k", Q.Q4_K, (2, 256)), ("q6_k", Q.Q6_K, (1, 512))]:
        nbytes = gguf.GGML_QUANT_SIZES[qtype][1] * shape[0] * shape[1] // 256
        raw = rng.integers(0, 256, nbytes, dtype=np.uint8).reshape(shape[0], -1)
        w.add_tensor(name, raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("describe", "dequant-hashes", "write"):
        sys.exit(__doc__)
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "describe":
        json.dump(describe(path), sys.stdout)
    elif cmd == "dequant-hashes":
        json.dump(dequant_hashes(path), sys.stdout)
    else:
        write(path)


if __name__ == "__main__":
    main()
