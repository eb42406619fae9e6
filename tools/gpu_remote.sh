#!/usr/bin/env bash
# Runs the GPU checks and benchmarks on a machine with a real GPU, from binaries built
# elsewhere: `tools/gpu_remote.sh STAGE...` with the stripped release binary at
# .dev/ropewalk and the op-test binary at .dev/gpu_ops (tools/gpu_pack.sh puts them
# there). Models are made on the spot with `ropewalk random-model`. Results go to $OUT
# (default /tmp/gpu_out).
#
# Stages: setup (Vulkan loader from .gl/*.deb if the machine has none), cpu (the CPU kernel
# tests on every path that machine's processor has), ops (the op tests, with and without
# subgroups), kernels (the GPU kernel benchmarks; KERNELS filters them),
# agree (greedy tokens and perplexity of random models, CPU against GPU), bench (pp512 and
# tg128 fully offloaded), units (pp512 with the matrix units and without), sweep (tg64 of the 7B shape by layers offloaded), profile (GPU
# time per kernel of a generation step, from timestamps), knockout (the 7B step's time
# without each kind of kernel), fold (tg128 with RMSNorm and SwiGLU folded into the
# products and without, alternating), split (tg64 after 0-4096 tokens by how one token's
# attention splits its positions over workgroups, ROPEWALK_GPU_ATTN_SPAN; 0 never splits),
# limit (tg64 of the 7B shape on the CPU alone and with the layers that fit in 1-3 GiB),
# shortlist (`run` generation, greedy and sampled, with the logits' shortlists and
# without, ROPEWALK_GPU_NO_SHORTLIST, alternating), wait (tg128 with waits that poll
# and that block at once, ROPEWALK_GPU_NO_POLL, alternating; `profile` gives the host's
# time per step beside the kernels'), versus (tg128 and pp512 fully offloaded against
# .dev/ropewalk-base, from `BASE=REV tools/gpu_pack.sh`, alternating).
set -uo pipefail
cd "$(dirname "$0")/.."
RW=.dev/ropewalk
OUT=${OUT:-/tmp/gpu_out}
MODELS=${MODELS:-/tmp/gpu_models}
mkdir -p "$OUT" "$MODELS"

model() { # shape type
    local f="$MODELS/$1-$2.gguf"
    [ -f "$f" ] || $RW random-model --shape "$1" --type "$2" -o "$f" >&2
    echo "$f"
}

# `alternate VAR UNSET SET BENCH_ARGS...`: bench both shapes fully offloaded with VAR unset
# (named UNSET) and set (SET), alternating, two rounds.
alternate() {
    local var=$1 unset=$2 set=$3
    shift 3
    for shape in smollm2-135m llama2-7b; do
        local m
        m=$(model $shape q4_0)
        for round in 1 2; do
            for label in "$unset" "$set"; do
                local on=()
                [ "$label" = "$set" ] && on=("$var=1")
                env "${on[@]}" $RW bench -m "$m" "$@" -ngl 99 -r 3 -o json 2>/dev/null |
                    python3 -c "import json,sys; [print(sys.argv[1], sys.argv[2], r['test'], round(r['avg_ts'],1), '+-', round(r['stddev_ts'],1)) for r in json.load(sys.stdin)]" $shape "$label"
            done
        done
    done 2>&1
}

for stage in "$@"; do
    echo "== $stage"
    case $stage in
    setup)
        if ! ldconfig -p | grep -q libvulkan.so.1; then
            for f in .gl/*.deb; do dpkg -x "$f" /; done
            ldconfig
        fi
        $RW devices --bandwidth | tee "$OUT/devices.txt"
        ;;
    cpu)
        grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx512vnni' /proc/cpuinfo | sort | uniq -c | tee "$OUT/cpu.txt"
        .dev/kernels_simd 2>&1 | tee -a "$OUT/cpu.txt"
        ;;
    ops)
        for t in gpu_ops gpu_fold; do
            .dev/$t --test-threads 1 2>&1 | tee -a "$OUT/ops.txt"
            echo "-- without subgroups" >>"$OUT/ops.txt"
            ROPEWALK_GPU_NO_SUBGROUPS=1 .dev/$t --test-threads 1 2>&1 | tee -a "$OUT/ops.txt"
        done
        ;;
    kernels)
        .dev/gpu_kernels --bench --warm-up-time 0.3 --measurement-time 1 ${KERNELS:-} 2>&1 |
            grep -E "^[a-z]|thrpt" | tee "$OUT/kernels.txt"
        ;;
    agree)
        head -c 20000 /dev/urandom | base64 > "$MODELS/text.txt"
        for shape in smollm2-135m llama2-7b; do
            m=$(model $shape q4_0)
            for ngl in 0 99; do
                echo "-- $shape -ngl $ngl"
                $RW run -m "$m" -p "The capital of France is" -n 32 --temp 0 -ngl $ngl --ctx-size 256 2>/dev/null | od -c | md5sum
                $RW perplexity -m "$m" -f "$MODELS/text.txt" --ctx-size 128 --chunks 4 -ngl $ngl 2>&1 | grep -iE "^(final|estimated)|PPL" | tail -1
            done
        done 2>&1 | tee "$OUT/agree.txt"
        ;;
    bench)
        for shape in smollm2-135m llama2-7b; do
            $RW bench -m "$(model $shape q4_0)" -p 512 -n 128 -ngl 99 -r 3 -o json > "$OUT/bench-$shape.json"
            python3 -c "import json,sys; [print(sys.argv[1], r['test'], round(r['avg_ts'],1), '+-', round(r['stddev_ts'],1)) for r in json.load(open(sys.argv[2]))]" $shape "$OUT/bench-$shape.json"
        done
        ;;
    units)
        # prompts with the matrix units and without
        alternate ROPEWALK_GPU_NO_MATRIX_UNITS mma f32 -p 512 -n 0 | tee "$OUT/units.txt"
        ;;
    sweep)
        $RW bench -m "$(model llama2-7b q4_0)" -p 0 -n 64 --gpu-sweep 8 -r 2 -o json > "$OUT/sweep-7b.json"
        python3 -c "import json,sys; [print(r['n_gpu_layers'], r['test'], round(r['avg_ts'],1)) for r in json.load(open(sys.argv[1]))]" "$OUT/sweep-7b.json"
        ;;
    profile)
        for shape in smollm2-135m llama2-7b; do
            ROPEWALK_GPU_PROFILE=1 $RW run -m "$(model $shape q4_0)" -p "hello" -n 64 --temp 0 -ngl 99 2>&1 >/dev/null |
                grep -A21 "host time per step" | sed "1s/^/$shape: /" | tee -a "$OUT/profile.txt"
        done
        # a prompt of about 512 tokens
        head -c 1200 /dev/urandom | base64 -w0 >"$MODELS/prompt.txt"
        ROPEWALK_GPU_PROFILE=1 $RW run -m "$(model llama2-7b q4_0)" -f "$MODELS/prompt.txt" -n 1 --temp 0 -ngl 99 -c 2048 -b 2048 2>&1 >/dev/null |
            grep -E "prompt|host time per step" -A21 | sed "1s/^/llama2-7b prompt: /" | tee -a "$OUT/profile.txt"
        ;;
    knockout)
        # what each kind of kernel costs a real 7B step: tg128 without it
        # (ROPEWALK_GPU_SKIP; the tokens are wrong, the timing is not)
        m=$(model llama2-7b q4_0)
        for skip in "" rms_norm attention silu_mul rms_norm,attention,silu_mul matmul \
            rms_norm,attention,silu_mul,matmul,rope; do
            ROPEWALK_GPU_SKIP=$skip $RW bench -m "$m" -p 0 -n 128 -ngl 99 -r 3 -o json 2>/dev/null |
                python3 -c "import json,sys
r = json.load(sys.stdin)[0]
print(f\"{sys.argv[1] or '(nothing)':42} {r['avg_ts']:8.1f} t/s {1e3 / r['avg_ts']:7.3f} ms/token\")" "$skip"
        done 2>&1 | tee "$OUT/knockout.txt"
        ;;
    fold)
        alternate ROPEWALK_GPU_NO_FOLD folded apart -p 0 -n 128 | tee "$OUT/fold.txt"
        ;;
    versus)
        for shape in smollm2-135m llama2-7b; do
            m=$(model $shape q4_0)
            for round in 1 2; do
                for bin in .dev/ropewalk-base $RW; do
                    $bin bench -m "$m" -p 512 -n 128 -ngl 99 -r 3 -o json 2>/dev/null |
                        python3 -c "import json,sys; [print(sys.argv[1], sys.argv[2], r['test'], round(r['avg_ts'],1), '+-', round(r['stddev_ts'],1)) for r in json.load(sys.stdin)]" $shape "$bin"
                done
            done
        done 2>&1 | tee "$OUT/versus.txt"
        ;;
    wait)
        alternate ROPEWALK_GPU_NO_POLL polling blocking -p 0 -n 128 | tee "$OUT/wait.txt"
        ;;
    limit)
        m=$(model llama2-7b q4_0)
        for args in "-ngl 0" "-ngl 99 --gpu-memory-limit 1G" "-ngl 99 --gpu-memory-limit 2G" \
            "-ngl 99 --gpu-memory-limit 3G"; do
            # shellcheck disable=SC2086
            $RW bench -m "$m" -p 0 -n 64 -r 2 $args -o json 2>&1 >"$OUT/limit.json" |
                grep -- "--gpu-memory-limit" | sed "s/^/$args: /"
            python3 -c "import json,sys; [print(sys.argv[1], ': ngl', r['n_gpu_layers'], r['test'], round(r['avg_ts'],1)) for r in json.load(open(sys.argv[2]))]" "$args" "$OUT/limit.json"
        done 2>&1 | tee "$OUT/limit.txt"
        ;;
    split)
        for shape in smollm2-135m llama2-7b; do
            m=$(model $shape q4_0)
            for round in 1 2; do
                for span in 0 ${SPANS:-64 128 256 512}; do
                    ROPEWALK_GPU_ATTN_SPAN=$span $RW bench -m "$m" -p 0 -n 64 -d 0,256,1024,4096 \
                        -ngl 99 -r 2 -o json 2>/dev/null |
                        python3 -c "import json,sys; [print(sys.argv[1], 'span', sys.argv[2], r['test'], round(r['avg_ts'],1)) for r in json.load(sys.stdin)]" $shape $span
                done
            done
        done 2>&1 | tee "$OUT/split.txt"
        ;;
    shortlist)
        for shape in smollm2-135m llama2-7b; do
            m=$(model $shape q4_0)
            for round in 1 2; do
                for sampling in "--temp 0" "--temp 0.8 --repeat-penalty 1.1"; do
                    for label in shortlist whole; do
                        on=()
                        [ $label = whole ] && on=(ROPEWALK_GPU_NO_SHORTLIST=1)
                        # shellcheck disable=SC2086
                        env "${on[@]}" $RW run -m "$m" -p "The capital of France is" -n 256 \
                            --ignore-eos $sampling -ngl 99 2>&1 >/dev/null |
                            grep -o "generation: .*" | sed "s/^/$shape $label $sampling: /"
                    done
                done
            done
        done 2>&1 | tee "$OUT/shortlist.txt"
        ;;
    *)
        echo "unknown stage $stage" >&2
        exit 2
        ;;
    esac
done
