#!/usr/bin/env bash
# Fetches what the tokenizer tests compare against into .cache/ (git-ignored):
#  - .cache/text/alice29.txt: the Canterbury corpus text behind the perplexity tokens of
#    ../shared/reference, taken from the PyPI source package brotli==1.2.1, and
#    .cache/text/alice.txt, the same book normalized as the reference did (about 37k tokens);
#  - .cache/npm: llama-tokenizer-js (Llama 1/2 SentencePiece) and llama3-tokenizer-js, two
#    independent tokenizers that ship their vocabularies;
#  - .cache/tokenizer/*.json: their vocabularies and encodings, written by
#    tools/tokenizer_oracles.mjs (rewritten whenever that script is newer than its output).
# Safe to run again: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache
ALICE=$CACHE/text/alice29.txt
ALICE_SHA256=7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0
mkdir -p "$CACHE/text" "$CACHE/sdist" "$CACHE/pip"

if [ ! -s "$ALICE" ]; then
    python3 -m pip download --quiet --no-deps --no-binary :all: --cache-dir "$CACHE/pip" \
        -d "$CACHE/sdist" "brotli==1.2.1"
    tar -xzf "$CACHE/sdist/brotli-1.2.1.tar.gz" -O brotli-1.2.1/tests/testdata/alice29.txt \
        > "$ALICE.part"
    echo "$ALICE_SHA256  $ALICE.part" | sha256sum --check --quiet
    mv "$ALICE.part" "$ALICE"
fi

# The book as the reference normalized it: hard-wrapped lines of a paragraph joined with
# single spaces, paragraphs separated by a blank line, a final line break.
if [ ! -s "$CACHE/text/alice.txt" ]; then
    python3 - "$ALICE" "$CACHE/text/alice.txt" <<'PY'
import sys
raw = open(sys.argv[1], encoding="ascii").read().replace("\r\n", "\n")
paragraphs, words = [], []
for line in raw.split("\n") + [""]:
    if line.strip():
        words.extend(line.split())
    elif words:
        paragraphs.append(" ".join(words))
        words = []
open(sys.argv[2], "w").write("\n\n".join(paragraphs) + "\n")
PY
fi

NODE_MODULES=$CACHE/npm/node_modules
if [ ! -f "$NODE_MODULES/llama-tokenizer-js/package.json" ] ||
    [ ! -f "$NODE_MODULES/llama3-tokenizer-js/package.json" ]; then
    npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" \
        llama-tokenizer-js@1.2.2 llama3-tokenizer-js@1.2.0
fi

OUT=$CACHE/tokenizer
SCRIPT=tools/tokenizer_oracles.mjs
if [ ! -s "$OUT/llama2.json" ] || [ ! -s "$OUT/llama3.json" ] || [ ! -s "$OUT/pretokenize.json" ] ||
    [ "$SCRIPT" -nt "$OUT/llama2.json" ]; then
    node "$SCRIPT" "$OUT"
fi
