#!/usr/bin/env bash
# Regenerates tests/data/quant/ from ggml's own quantizers: fetches the llama-cpp-python
# sdist (which vendors llama.cpp's ggml) into .cache/, compiles ggml-quants.c with the
# harness tools/quant_fixtures.c and writes the fixtures. No llama.cpp code is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SDIST=.cache/sdist/llama_cpp_python-$VERSION.tar.gz
SRC=.cache/sdist/llama_cpp_python-$VERSION
GGML=$SRC/vendor/llama.cpp/ggml
OUT=tests/data/quant

# ggml's quantizers convert out-of-range floats to int8_t as the host's instruction does
# (x86-64: 0x80000000, then the low byte); the fixtures pin x86-64's answer.
if [ "$(uname -m)" != x86_64 ]; then
    echo "make_quant_fixtures.sh: run on x86-64 (this is $(uname -m))" >&2
    exit 1
fi

mkdir -p .cache/sdist .cache/quant_fixtures "$OUT"
if [ ! -s "$SDIST" ]; then
    # Only llama-cpp-python itself from source: its build backend (needed to read the
    # sdist's metadata) installs from wheels.
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
        --cache-dir .cache/pip -d .cache/sdist "llama-cpp-python==$VERSION"
fi
echo "$SHA256  $SDIST" | sha256sum --check --quiet
if [ ! -f "$GGML/src/ggml-quants.c" ]; then
    tar -xzf "$SDIST" -C .cache/sdist \
        "llama_cpp_python-$VERSION/vendor/llama.cpp/ggml/include" \
        "llama_cpp_python-$VERSION/vendor/llama.cpp/ggml/src"
fi

# Baseline x86-64 (SSE2, no FMA), strict IEEE float: no contraction, no fast-math;
# NDEBUG as in a release build of ggml, where nearest_int's range assert is compiled out.
CC=${CC:-gcc}
CFLAGS=(-O2 -march=x86-64 -std=gnu11 -ffp-contract=off -fno-fast-math -DNDEBUG
        -I"$GGML/include" -I"$GGML/src" -w)
BIN=.cache/quant_fixtures
"$CC" "${CFLAGS[@]}" -c "$GGML/src/ggml-quants.c" -o $BIN/ggml-quants.o
"$CC" "${CFLAGS[@]}" -c tools/quant_fixtures.c -o $BIN/quant_fixtures.o
"$CC" $BIN/ggml-quants.o $BIN/quant_fixtures.o -lm -o $BIN/quant_fixtures

$BIN/quant_fixtures "$OUT"
du -cb "$OUT"/*.bin | tail -1 | awk '{print "tests/data/quant: " $1 " bytes of fixtures"}'
