#!/usr/bin/env python3
"""Writes a tiny random-weight Llama as a Hugging Face model folder, for fast converter tests:

    OUT/config.json  generation_config.json  tokenizer.json  tokenizer_config.json
        model-00001-of-00002.safetensors  model-00002-of-00002.safetensors
        model.safetensors.index.json

    make_tiny_llama.py OUT [--dtype f32|f16|bf16] [--tied] [--seed N]

Shape: 2 layers, hidden 256, 4 heads of 64 (2 KV heads), feed-forward 512, vocabulary 300
(a byte-level BPE of 256 bytes, a few merges and three special tokens; the rest padding),
so rows are whole 256-blocks and every quantized type applies without fallback. The first
shard holds the embedding and layer 0, the second the rest. Weights are seeded normal
values; bf16 rounds float32 to nearest even as torch does.

Needs only numpy (the venv of tools/setup.sh has it). The safetensors writer here streams
tensor by tensor, so tools/make_random_hf_llama.py uses it for multi-gigabyte models.
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {"f32": ("F32", 4), "f16": ("F16", 2), "bf16": ("BF16", 2)}

TINY = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 300,
    "max_position_embeddings": 512,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
}

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r")]


def byte_alphabet():
    """GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest are moved
    up past 255."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return [out[b] for b in range(256)]


def write_tokenizer(out: Path, vocab_size: int):
    """A byte-level BPE tokenizer.json (GPT-2 pre-tokenizer) and tokenizer_config.json;
    ids from the last special token up to vocab_size are left out (padding)."""
    vocab = {tok: i for i, tok in enumerate(byte_alphabet())}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab), "content": s, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
        vocab[s] = len(vocab)
    assert len(vocab) <= vocab_size, (len(vocab), vocab_size)
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in MERGES]},
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    config = {
        "add_bos_token": False,
        "bos_token": SPECIALS[0],
        "eos_token": SPECIALS[2],
        "unk_token": SPECIALS[0],
        "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    bos, eos = vocab[SPECIALS[0]], vocab[SPECIALS[2]]
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": bos, "eos_token_id": eos}, indent=1))
    return bos, eos


def write_config(out: Path, shape: dict, dtype: str, tied: bool, bos: int, eos: int):
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "hidden_act": "silu",
        "mlp_bias": False,
        "tie_word_embeddings": tied,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "rope_scaling": None,
        "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype],
        **shape,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))


def tensor_shapes(shape: dict, tied: bool):
    """(Hugging Face name, shape) of every tensor, in the order of the shards."""
    d, ffn = shape["hidden_size"], shape["intermediate_size"]
    hd = d // shape["num_attention_heads"]
    q, kv = shape["num_attention_heads"] * hd, shape["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", (shape["vocab_size"], d))]
    for i in range(shape["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (d,)),
            (p + "self_attn.q_proj.weight", (q, d)),
            (p + "self_attn.k_proj.weight", (kv, d)),
            (p + "self_attn.v_proj.weight", (kv, d)),
            (p + "self_attn.o_proj.weight", (d, q)),
            (p + "post_attention_layernorm.weight", (d,)),
            (p + "mlp.gate_proj.weight", (ffn, d)),
            (p + "mlp.up_proj.weight", (ffn, d)),
            (p + "mlp.down_proj.weight", (d, ffn)),
        ]
    out.append(("model.norm.weight", (d,)))
    if not tied:
        out.append(("lm_head.weight", (shape["vocab_size"], d)))
    return out


def to_dtype(x: np.ndarray, dtype: str) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "f32":
        return x.astype("<f4").tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    u = x.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def write_safetensors(path: Path, tensors, dtype: str, fill):
    """Writes `tensors` ([(name, shape)]) to `path`, asking `fill(name, shape, f)` to write
    each tensor's bytes to the open file in turn, so no tensor need be whole in memory."""
    st_dtype, size = DTYPES[dtype]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in tensors:
            start = f.tell()
            fill(name, shape, f)
            assert f.tell() - start == header[name]["data_offsets"][1] - header[name]["data_offsets"][0], name
    return offset


def write_index(out: Path, shards, total_size: int):
    weight_map = {name: file for file, tensors in shards for name, _ in tensors}
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))


def make(out: Path, dtype: str, tied: bool, seed: int):
    out.mkdir(parents=True, exist_ok=True)
    bos, eos = write_tokenizer(out, TINY["vocab_size"])
    write_config(out, TINY, dtype, tied, bos, eos)
    rng = np.random.default_rng(seed)

    def fill(name, shape, f):
        if name.endswith("norm.weight"):
            x = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape) / np.sqrt(shape[-1])
        f.write(to_dtype(x, dtype))

    tensors = tensor_shapes(TINY, tied)
    split = 1 + 9  # embedding and layer 0
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    shards = [(names[0], tensors[:split]), (names[1], tensors[split:])]
    total = sum(write_safetensors(out / file, ts, dtype, fill) for file, ts in shards)
    write_index(out, shards, total)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    p.add_argument("--tied", action="store_true", help="tie the output layer to the embedding")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    make(a.out, a.dtype, a.tied, a.seed)


if __name__ == "__main__":
    sys.exit(main())
