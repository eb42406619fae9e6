#!/usr/bin/env bash
# Builds the release binary, the GPU op tests, the GPU kernel benchmarks and the CPU
# kernel tests (the GPU machine's processor may have paths this one lacks, AVX-512), and
# puts stripped copies in .dev/ (git-ignored) for tools/gpu_remote.sh on a GPU machine.
# With BASE=REV, the release binary of revision REV too, as .dev/ropewalk-base (built in a
# worktree under target/base), for the `versus` stage.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
# The executable cargo builds for target NAME, given the build command's arguments.
executable() {
    local name=$1
    shift
    cargo "$@" --message-format=json 2>/dev/null | python3 -c "import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get('reason') == 'compiler-artifact' and m['target']['name'] == '$name' and m.get('executable'):
        print(m['executable'])"
}
mkdir -p .dev
strip -o .dev/ropewalk target/release/ropewalk
strip -o .dev/gpu_ops "$(executable gpu_ops test --release --test gpu_ops --no-run)"
strip -o .dev/gpu_fold "$(executable gpu_fold test --release --test gpu_fold --no-run)"
strip -o .dev/gpu_kernels "$(executable gpu_kernels bench --bench gpu_kernels --no-run)"
strip -o .dev/kernels_simd "$(executable kernels_simd test --release --test kernels_simd --no-run)"
if [ -n "${BASE:-}" ]; then
    tree=target/base/tree
    rm -rf "$tree"
    git worktree prune
    git worktree add --detach "$tree" "$BASE" >/dev/null
    (cd "$tree" && cargo build --release --quiet --target-dir ../build)
    strip -o .dev/ropewalk-base target/base/build/release/ropewalk
    git worktree remove --force "$tree"
fi
ls -la .dev
