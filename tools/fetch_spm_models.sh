#!/usr/bin/env bash
# Real SentencePiece models for the tokenizer.model tests, into .cache/spm/ (git-ignored):
#  - test_model.model: the Unigram model of SentencePiece's own tests, and botchan.txt, its
#    training text, from the PyPI source package sentencepiece==0.2.1;
#  - botchan_bpe.model: a Llama-style BPE model trained here on botchan.txt by the
#    sentencepiece package (tools/spm_oracle.py train).
# The venv gets sentencepiece and protobuf, with which tools/spm_oracle.py reads the models.
# Safe to run again: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache
OUT=$CACHE/spm
SDIST=$CACHE/sdist/sentencepiece-0.2.1.tar.gz
mkdir -p "$OUT" "$CACHE/sdist" "$CACHE/pip"

if ! "$CACHE/venv/bin/python" -c 'import sentencepiece, google.protobuf' 2>/dev/null; then
    "$CACHE/venv/bin/pip" install --quiet --cache-dir "$CACHE/pip" \
        "sentencepiece==0.2.1" "protobuf==7.36.2"
fi

extract() { # NAME SHA256
    [ -s "$OUT/$1" ] && return 0
    if [ ! -s "$SDIST" ]; then
        "$CACHE/venv/bin/pip" download --quiet --no-deps --no-binary :all: \
            --cache-dir "$CACHE/pip" -d "$CACHE/sdist" "sentencepiece==0.2.1"
    fi
    tar -xzf "$SDIST" -O "sentencepiece-0.2.1/test/$1" > "$OUT/$1.part"
    echo "$2  $OUT/$1.part" | sha256sum --check --quiet
    mv "$OUT/$1.part" "$OUT/$1"
}
extract test_model.model 4884d27bf50494e080aa99dbb868f27b68b6a3b6bd128da37ad6057c5e3cf5a2
extract botchan.txt 464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7

if [ ! -s "$OUT/botchan_bpe.model" ]; then
    "$CACHE/venv/bin/python" tools/spm_oracle.py train "$OUT/botchan.txt" "$OUT/botchan_bpe"
fi
echo "sentencepiece models: $OUT"
