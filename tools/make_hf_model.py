#!/usr/bin/env python3
"""Turns the test model (SmolLM2-135M-Instruct, Q4_1 GGUF) into a Hugging Face model folder,
so that `ropewalk convert` has a real safetensors model to convert:

    .cache/hf/smollm2-f32/    (default)         .cache/hf/smollm2-bf16/   (--dtype bf16)
        config.json  generation_config.json  model.safetensors
        tokenizer.json  tokenizer_config.json

The recipe is the one of the reference outputs (shared/reference/README.md): every tensor
dequantized to float32 under its Hugging Face name, the rows of attn_q and attn_k put back
from GGUF's interleaved RoPE layout into Hugging Face's half-split one, config.json the
reference's base config, and a byte-level BPE tokenizer.json built from the GGUF vocabulary
and merges. bf16 rounds the float32 values to nearest even, as torch's `.to(bfloat16)` does.

Run with the venv of tools/setup.sh (it has `gguf` and numpy). Safe to run again: an
existing folder made by this version of the script is left alone; the folder appears whole
(written under a temporary name, then renamed) or not at all.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_CONFIG = ROOT / "tests/data/hf_reference/configs/base.config.json"
# Written into the folder; a folder with another stamp (an older recipe) is made again.
STAMP_FILE = "ropewalk_made_by.json"
STAMP = {"tool": "tools/make_hf_model.py", "recipe": 1, "source": SOURCE.name}

# GGUF tensor name (after `blk.N.`) -> Hugging Face name (after `model.layers.N.`).
BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}

TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4


def hf_name(name):
    if name in TOP_NAMES:
        return TOP_NAMES[name]
    parts = name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{BLOCK_NAMES[parts[2]]}"
    sys.exit(f"error: {name}: no Hugging Face name for this GGUF tensor")


def unpermute(w, n_head):
    """GGUF's interleaved rows (pair 2i, 2i+1 per head) back to HF's half-split (i, i+d/2)."""
    out, inner = w.shape
    head_dim = out // n_head
    return w.reshape(n_head, head_dim // 2, 2, inner).swapaxes(1, 2).reshape(out, inner)


def to_bf16(x):
    """float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16
    nan = np.isnan(x)
    rounded[nan] = (bits[nan] >> 16) | np.uint32(0x40)
    return rounded.astype(np.uint16)


def field_value(reader, key):
    field = reader.fields.get(key)
    if field is None:
        return None
    if field.types[0] == GGUFValueType.ARRAY:
        if field.types[1] == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    part = field.parts[field.data[0]]
    if field.types[0] == GGUFValueType.STRING:
        return bytes(part).decode("utf-8")
    return part.tolist()[0]


def write_safetensors(path, reader, dtype, n_head, n_head_kv):
    """Header first (every shape is known from the GGUF), then one tensor at a time."""
    st_dtype, item = {"f32": ("F32", 4), "bf16": ("BF16", 2)}[dtype]
    tensors = sorted(reader.tensors, key=lambda t: hf_name(t.name))
    header, offset = {}, 0
    for t in tensors:
        shape = [int(d) for d in reversed(t.shape.tolist())]
        size = int(np.prod(shape)) * item
        header[hf_name(t.name)] = {
            "dtype": st_dtype,
            "shape": shape,
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for t in tensors:
            w = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
            w = w.reshape([int(d) for d in reversed(t.shape.tolist())])
            if t.name.endswith("attn_q.weight"):
                w = unpermute(w, n_head)
            elif t.name.endswith("attn_k.weight"):
                w = unpermute(w, n_head_kv)
            data = to_bf16(w) if dtype == "bf16" else np.ascontiguousarray(w, dtype="<f4")
            f.write(data.tobytes())
    return len(tensors), offset


def tokenizer_files(reader):
    tokens = field_value(reader, "tokenizer.ggml.tokens")
    types = field_value(reader, "tokenizer.ggml.token_type")
    merges = field_value(reader, "tokenizer.ggml.merges")
    if field_value(reader, "tokenizer.ggml.model") != "gpt2":
        sys.exit("error: the source GGUF is not a byte-level BPE model")
    if field_value(reader, "tokenizer.ggml.pre") != "smollm":
        sys.exit("error: the source GGUF's pre-tokenizer is not smollm")
    pairs = []
    for m in merges:
        a, sep, b = m.partition(" ")
        if not sep or " " in b:
            sys.exit(f"error: merge {m!r} is not two tokens separated by one space")
        pairs.append([a, b])

    added = []
    for i, (text, ty) in enumerate(zip(tokens, types)):
        if ty in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED):
            added.append({
                "id": i,
                "content": text,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": ty == TOKEN_TYPE_CONTROL,
            })
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": True},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {text: i for i, text in enumerate(tokens)},
            "merges": pairs,
        },
    }

    def token(key):
        i = field_value(reader, key)
        return None if i is None else tokens[i]

    config = {
        "add_bos_token": bool(field_value(reader, "tokenizer.ggml.add_bos_token")),
        "add_prefix_space": bool(field_value(reader, "tokenizer.ggml.add_space_prefix")),
        "added_tokens_decoder": {
            str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added
        },
        "bos_token": token("tokenizer.ggml.bos_token_id"),
        "eos_token": token("tokenizer.ggml.eos_token_id"),
        "pad_token": token("tokenizer.ggml.padding_token_id"),
        "unk_token": token("tokenizer.ggml.unknown_token_id"),
        "chat_template": field_value(reader, "tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "model_max_length": field_value(reader, "llama.context_length"),
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": len(tokens),
    }
    generation = {
        "bos_token_id": field_value(reader, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": field_value(reader, "tokenizer.ggml.eos_token_id"),
        "pad_token_id": field_value(reader, "tokenizer.ggml.padding_token_id"),
    }
    return tokenizer, config, generation


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--out", type=Path, help="output folder (default .cache/hf/smollm2-DTYPE)")
    args = ap.parse_args()
    out = args.out or ROOT / f".cache/hf/smollm2-{args.dtype}"
    stamp = dict(STAMP, dtype=args.dtype)
    try:
        if json.loads((out / STAMP_FILE).read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    if not SOURCE.is_file():
        sys.exit(f"error: {SOURCE} is missing: run tools/fetch_test_model.sh first")

    reader = GGUFReader(SOURCE)
    if field_value(reader, "general.architecture") != "llama":
        sys.exit("error: the source GGUF is not a llama model")
    n_head = field_value(reader, "llama.attention.head_count")
    n_head_kv = field_value(reader, "llama.attention.head_count_kv")

    tmp = out.parent / (out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n, size = write_safetensors(tmp / "model.safetensors", reader, args.dtype, n_head, n_head_kv)
    tokenizer, tok_config, generation = tokenizer_files(reader)
    write_json(tmp / "tokenizer.json", tokenizer)
    write_json(tmp / "tokenizer_config.json", tok_config)
    write_json(tmp / "generation_config.json", generation)
    config = json.loads(BASE_CONFIG.read_text())
    if args.dtype == "bf16":
        config["torch_dtype"] = "bfloat16"
    write_json(tmp / "config.json", config)
    write_json(tmp / STAMP_FILE, stamp)

    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    print(f"hf model: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"({n} tensors, {size} bytes of {args.dtype})")


if __name__ == "__main__":
    main()
