#!/usr/bin/env python3
"""Writes a Llama-2-7B-shaped GGUF (Q4_0 weights, zero data, a 32000-token vocabulary)
through the Python `gguf` package, for measuring what opening a multi-gigabyte file costs.

  .cache/venv/bin/python tools/make_blank_gguf.py OUT.gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

DIM, FFN, LAYERS, VOCAB = 4096, 11008, 32, 32000


def q4_0(rows, cols):
    return np.zeros((rows, cols // 32 * 18), dtype=np.uint8), Q.Q4_0


def main(out):
    w = gguf.GGUFWriter(out, "llama")
    w.add_context_length(4096)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(32)
    w.add_head_count_kv(32)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(128)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<tok{i}>" for i in range(VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    tensors = [("token_embd.weight", *q4_0(VOCAB, DIM)),
               ("output_norm.weight", np.ones(DIM, np.float32), None),
               ("output.weight", *q4_0(VOCAB, DIM))]
    for i in range(LAYERS):
        for name, rows, cols in [("attn_q", DIM, DIM), ("attn_k", DIM, DIM), ("attn_v", DIM, DIM),
                                 ("attn_output", DIM, DIM), ("ffn_gate", FFN, DIM),
                                 ("ffn_up", FFN, DIM), ("ffn_down", DIM, FFN)]:
            tensors.append((f"blk.{i}.{name}.weight", *q4_0(rows, cols)))
        tensors.append((f"blk.{i}.attn_norm.weight", np.ones(DIM, np.float32), None))
        tensors.append((f"blk.{i}.ffn_norm.weight", np.ones(DIM, np.float32), None))
    for name, data, qtype in tensors:
        if qtype is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
