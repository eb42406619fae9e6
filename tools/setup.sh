#!/usr/bin/env bash
# Sets up a fresh machine for ropewalk's tests: Mesa's software Vulkan driver (lavapipe, so
# the GPU tests run on the CPU), the Python oracle (gguf package in a venv), the test
# model, the K-quant reference file and the tokenizer oracles (npm packages and the
# perplexity text), all cached under .cache/ (git-ignored).
# Safe to run again: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache
mkdir -p "$CACHE/models" "$CACHE/pip"

# Lavapipe and the Vulkan loader: wgpu's Vulkan path without a GPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || ! ldconfig -p | grep -q libvulkan.so.1; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# Python venv with the independent GGUF implementation used as an oracle.
if [ ! -x "$CACHE/venv/bin/python" ]; then
    python3 -m venv "$CACHE/venv"
fi
if ! "$CACHE/venv/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
    "$CACHE/venv/bin/pip" install --quiet --cache-dir "$CACHE/pip" "gguf==0.19.0" "numpy<3"
fi

tools/fetch_test_model.sh
tools/fetch_kquant_reference.sh
tools/fetch_tokenizer_oracles.sh
tools/fetch_spm_models.sh
"$CACHE/venv/bin/python" tools/make_hf_model.py && "$CACHE/venv/bin/python" tools/make_hf_model.py --dtype bf16
echo "setup done: $CACHE"
