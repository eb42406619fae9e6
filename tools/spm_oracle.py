#!/usr/bin/env python3
"""SentencePiece, the reference implementation, as an oracle for ropewalk's tokenizer.model
reader (run with the venv of tools/setup.sh, which tools/fetch_spm_models.sh gives the
`sentencepiece` and `protobuf` packages):

    spm_oracle.py dump MODEL          the fields ropewalk reads, as JSON (null: not in the file)
    spm_oracle.py encode MODEL        reads a JSON list of texts on stdin, prints their ids
    spm_oracle.py train TEXT PREFIX   trains the BPE test model PREFIX.model on TEXT
"""

import json
import os
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb


def dump(path):
    m = pb.ModelProto()
    with open(path, "rb") as f:
        m.ParseFromString(f.read())
    ts, ns = m.trainer_spec, m.normalizer_spec

    def opt(msg, field):
        return getattr(msg, field) if msg.HasField(field) else None

    return {
        "pieces": [[p.piece, p.score, p.type] for p in m.pieces],
        "model_type": opt(ts, "model_type") if m.HasField("trainer_spec") else None,
        "add_dummy_prefix": opt(ns, "add_dummy_prefix") if m.HasField("normalizer_spec") else None,
        "unk_id": opt(ts, "unk_id"),
        "bos_id": opt(ts, "bos_id"),
        "eos_id": opt(ts, "eos_id"),
        "pad_id": opt(ts, "pad_id"),
    }


def encode(path, texts):
    sp = spm.SentencePieceProcessor(model_file=path)
    return [sp.encode(t) for t in texts]


def train(text, prefix):
    """A Llama-style BPE model (no normalization, byte fallback, digits split) with a
    user-defined and a control symbol, so that every piece type appears."""
    tmp = prefix + ".part"
    spm.SentencePieceTrainer.train(
        input=text,
        model_prefix=tmp,
        model_type="bpe",
        vocab_size=1000,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        byte_fallback=True,
        split_digits=True,
        user_defined_symbols=["<tool>"],
        control_symbols=["<ctl>"],
        num_threads=1,
        minloglevel=2,
    )
    os.replace(tmp + ".model", prefix + ".model")
    os.remove(tmp + ".vocab")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        json.dump(dump(sys.argv[2]), sys.stdout, ensure_ascii=False)
    elif len(sys.argv) == 3 and sys.argv[1] == "encode":
        json.dump(encode(sys.argv[2], json.load(sys.stdin)), sys.stdout)
    elif len(sys.argv) == 4 and sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
