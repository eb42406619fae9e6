#!/usr/bin/env bash
# The NEON kernels against their scalar twins, on an x86-64 machine: cross-compiled for
# AArch64 and run under qemu (runner and linker in .cargo/config.toml), once on a CPU
# without the dot-product extension and once on one with it. Needs tools/setup_aarch64.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo clippy --locked --release --target aarch64-unknown-linux-gnu --lib --tests -- -D warnings
for cpu in cortex-a72 neoverse-n1; do
    echo "== qemu-aarch64 -cpu $cpu"
    # pipefail carries a test failure through the filter.
    QEMU_CPU=$cpu cargo test --locked --release --target aarch64-unknown-linux-gnu \
        --lib --test kernels_simd -- --nocapture 2>&1 |
        grep -E "kernel paths|test result|FAILED|panicked|^error" | sort -u
done
