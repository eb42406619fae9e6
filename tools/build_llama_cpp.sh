#!/usr/bin/env bash
# Builds llama.cpp (CPU only, Release, -DGGML_NATIVE=ON) from the llama.cpp vendored in the
# llama-cpp-python source package on PyPI, into .cache/llama.cpp/ (git-ignored), once.
# The peer that tools/compare_llama_cpp.py measures ropewalk against. No llama.cpp code is
# ever committed. Idempotent: a finished build is detected and nothing is done.
#
#   tools/build_llama_cpp.sh            # llama-bench, llama-quantize, llama-perplexity, llama-cli
#   JOBS=1 tools/build_llama_cpp.sh     # fewer compile jobs (default: all cores)
#   ISA=avx2 tools/build_llama_cpp.sh   # AVX2+FMA+F16C only, as on a laptop without AVX-512,
#                                       # into .cache/llama.cpp/build-avx2/
#
# Prints where the binaries are: .cache/llama.cpp/build/bin/ (build-avx2/bin/ with ISA=avx2).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SDIST=.cache/sdist/llama_cpp_python-$VERSION.tar.gz
DEST=.cache/llama.cpp
SRC=$DEST/src
ISA=${ISA:-native}
case "$ISA" in
    native)
        BUILD=$DEST/build
        CPU_FLAGS=(-DGGML_NATIVE=ON)
        ;;
    avx2)
        BUILD=$DEST/build-avx2
        CPU_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
            -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF)
        ;;
    *)
        echo "build_llama_cpp.sh: ISA must be native or avx2, not '$ISA'" >&2
        exit 2
        ;;
esac
BIN=$BUILD/bin
# Needed by the comparison; llama-cli drags in the server code, so it is built last and a
# failure there does not undo the others.
REQUIRED=(llama-bench llama-quantize llama-perplexity llama-completion)
OPTIONAL=(llama-cli)

have_all() {
    local t
    for t in "$@"; do [ -x "$BIN/$t" ] || return 1; done
}

if have_all "${REQUIRED[@]}" "${OPTIONAL[@]}" && [ -f "$BUILD/BUILT" ]; then
    echo "llama.cpp already built: $BIN"
    exit 0
fi

if ! command -v cmake >/dev/null; then
    echo "build_llama_cpp.sh: cmake missing, installing it with apt-get" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q cmake >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q cmake >/dev/null; }
    else
        sudo apt-get install -y -q cmake >/dev/null
    fi
fi
command -v c++ >/dev/null || { echo "build_llama_cpp.sh: no C++ compiler (install g++)" >&2; exit 1; }

mkdir -p .cache/sdist "$DEST"
if [ ! -s "$SDIST" ]; then
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
        --cache-dir .cache/pip -d .cache/sdist "llama-cpp-python==$VERSION"
fi
echo "$SHA256  $SDIST" | sha256sum --check --quiet

if [ ! -f "$SRC/CMakeLists.txt" ]; then
    rm -rf "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -xzf "$SDIST" -C "$SRC.tmp" --strip-components=3 \
        "llama_cpp_python-$VERSION/vendor/llama.cpp"
    rm -rf "$SRC"
    mv "$SRC.tmp" "$SRC"
fi

# The sdist has no git checkout, only the submodule's HEAD: llama-bench reports it.
COMMIT=$(tar -xzOf "$SDIST" "llama_cpp_python-$VERSION/.git/modules/vendor/llama.cpp/HEAD" | cut -c1-7)

# Everything that would reach the network (HTTPS model download, prebuilt web UI) is off;
# tests and examples are not needed.
start=$(date +%s)
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${CPU_FLAGS[@]}" \
    -DLLAMA_BUILD_COMMIT="$COMMIT" -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    >"$BUILD.cmake.log" 2>&1 || { tail -30 "$BUILD.cmake.log" >&2; exit 1; }

JOBS=${JOBS:-$(nproc)}
cmake --build "$BUILD" --config Release -j "$JOBS" --target "${REQUIRED[@]}" \
    >"$BUILD.build.log" 2>&1 || { tail -30 "$BUILD.build.log" >&2; exit 1; }
if ! cmake --build "$BUILD" --config Release -j "$JOBS" --target "${OPTIONAL[@]}" \
    >>"$BUILD.build.log" 2>&1; then
    echo "build_llama_cpp.sh: ${OPTIONAL[*]} did not build (see $BUILD.build.log); the comparison does not need it" >&2
fi
have_all "${REQUIRED[@]}" || { echo "build_llama_cpp.sh: binaries missing in $BIN" >&2; exit 1; }
end=$(date +%s)
echo "llama.cpp $COMMIT (llama-cpp-python $VERSION, $ISA) built in $((end - start)) s" | tee "$BUILD/BUILT"
echo "binaries: $BIN"
