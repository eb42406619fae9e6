#!/usr/bin/env python3
"""KV cache memory and speed at long contexts (docs/BENCHMARKS.md): for each context
size and cache type, one `ropewalk perplexity` window over the Alice text, recording the
cache's bytes, the process's peak resident memory and prompt tokens/s.

  python3 tools/kv_cache_bench.py [--ctx 8192,16384,32768] [--types f32,f16,q8_0]
      [--threads 2] [--out docs/kv_cache_bench.jsonl]

Each result is appended to OUT as one JSON line, so an interrupted run resumes.
"""
import argparse
import json
import os
import subprocess
import sys

MODEL = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ".cache/text/alice.txt"


def run(binary, ctx, ty, threads):
    cmd = [binary, "perplexity", "-m", MODEL, "-f", TEXT, "-c", str(ctx), "--chunks", "1",
           "--cache-type", ty, "-t", str(threads), "--json"]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{cmd[0]} failed with status {status}")
    report = json.loads(out)
    return {
        "n_ctx": ctx,
        "cache_type": ty,
        "threads": threads,
        "kv_cache_bytes": report["kv_cache_bytes"],
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "tokens_per_second": report["tokens_per_second"],
        "seconds": report["seconds"],
        "ppl": report["ppl"],
    }


def table(rows):
    mib = lambda b: f"{b / 2**20:.0f} MiB"
    lines = ["| context | cache | KV cache | peak RSS | prompt tok/s | PPL (1 window) |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["n_ctx"], r["cache_type"])):
        lines.append(f"| {r['n_ctx']} | {r['cache_type']} | {mib(r['kv_cache_bytes'])} | "
                     f"{mib(r['peak_rss_bytes'])} | {r['tokens_per_second']:.1f} | "
                     f"{r['ppl']:.3f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default="target/release/ropewalk")
    p.add_argument("--ctx", default="8192,16384,32768")
    p.add_argument("--types", default="f32,f16,q8_0")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="docs/kv_cache_bench.jsonl")
    args = p.parse_args()
    rows = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    done = {(r["n_ctx"], r["cache_type"]) for r in rows}
    for ctx in map(int, args.ctx.split(",")):
        for ty in args.types.split(","):
            if (ctx, ty) in done:
                continue
            row = run(args.binary, ctx, ty, args.threads)
            rows.append(row)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
