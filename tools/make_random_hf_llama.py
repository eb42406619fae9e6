#!/usr/bin/env python3
"""Writes a Llama-2-7B-shaped Hugging Face model folder with random BF16 weights (about
13.5 GB), for the converter's memory and speed benchmark:

    make_random_hf_llama.py OUT [--layers N] [--seed N]

32 layers, hidden 4096, 32 heads, feed-forward 11008, vocabulary 32000 (a byte-level BPE
padded to that size), untied output, two shards with model.safetensors.index.json as
Hugging Face saves a 7B model. `--layers` makes a smaller model of the same width.

Streaming: each tensor is generated and written 64 MB at a time, so the script needs
little memory whatever the size. The values are random bits with the exponent pinned
(magnitudes 2^-7 to 2^-5 for matrices, 1 to 2 for norms): what matters here is the bytes
to move and convert, not what the model would say.

Safe to run again: an existing folder with the same shape is left alone.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tiny_llama import (  # noqa: E402
    tensor_shapes,
    write_config,
    write_index,
    write_safetensors,
    write_tokenizer,
)

LLAMA2_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
}
CHUNK = 32 << 20  # values per write: 64 MB of bf16
STAMP = "ropewalk_made_by.json"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    shape = {**LLAMA2_7B, "num_hidden_layers": a.layers}
    stamp = {"tool": "tools/make_random_hf_llama.py", "shape": shape, "seed": a.seed}
    if (a.out / STAMP).exists() and json.loads((a.out / STAMP).read_text()) == stamp:
        print(f"{a.out} is already there")
        return
    a.out.mkdir(parents=True, exist_ok=True)
    bos, eos = write_tokenizer(a.out, shape["vocab_size"])
    write_config(a.out, shape, "bf16", False, bos, eos)
    rng = np.random.default_rng(a.seed)

    def fill(name, dims, f):
        n = int(np.prod(dims))
        norm = name.endswith("norm.weight")
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            r = np.frombuffer(rng.bytes(2 * k), dtype="<u2")
            # sign and 7 mantissa bits random; exponent 127 (norms) or 120-121.
            bits = (r & 0x007F) | 0x3F80 if norm else (r & 0x80FF) | 0x3C00
            f.write(bits.astype("<u2").tobytes())

    tensors = tensor_shapes(shape, tied=False)
    # Hugging Face's 7B split: about 10 GB in the first shard.
    sizes = np.cumsum([2 * int(np.prod(s)) for _, s in tensors])
    split = int(np.searchsorted(sizes, 10e9)) or len(tensors)
    parts = [ts for ts in (tensors[:split], tensors[split:]) if ts]
    shards = [(f"model-{i + 1:05}-of-{len(parts):05}.safetensors", ts) for i, ts in enumerate(parts)]
    total = 0
    for file, ts in shards:
        total += write_safetensors(a.out / file, ts, "bf16", fill)
        print(f"wrote {a.out / file}", flush=True)
    write_index(a.out, shards, total)
    (a.out / STAMP).write_text(json.dumps(stamp))


if __name__ == "__main__":
    sys.exit(main())
