#!/usr/bin/env python3
"""The long-context experiment of docs/LONG_CONTEXT.md: perplexity of the test model
(trained at 8192) on the normalized Alice text (about 37k tokens) at several context
sizes, for each RoPE scaling method, with the mean NLL by position bucket; then a plot.

  .cache/venv/bin/python tools/long_context.py [--ctx 2048,4096,...] [--methods none,yarn4]
      [--cache-type f16] [--out docs/long_context] [--plot-only]

Results are appended to OUT/results.jsonl (one `ropewalk perplexity --json` report per
line, with the method name), so an interrupted run resumes where it stopped.
"""
import argparse
import json
import os
import subprocess
import sys

MODEL = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ".cache/text/alice.txt"
METHODS = {
    "none": [],
    "linear2": ["--compress-pos-emb", "2"],
    "linear4": ["--compress-pos-emb", "4"],
    "ntk_alpha2": ["--alpha-value", "2"],
    "ntk_alpha4": ["--alpha-value", "4"],
    "dynamic4": ["--rope-scaling", "dynamic", "--rope-scale", "4"],
    "yarn2": ["--rope-scaling", "yarn", "--rope-scale", "2"],
    "yarn4": ["--rope-scaling", "yarn", "--rope-scale", "4"],
}
CTX = [2048, 4096, 8192, 16384, 32768]


def run(binary, method, ctx, cache_type):
    cmd = [binary, "perplexity", "-m", MODEL, "-f", TEXT, "-c", str(ctx), "--json",
           "--cache-type", cache_type, *METHODS[method]]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    report = json.loads(out)
    report["method"] = method
    return report


def plot(results, out):
    try:
        import matplotlib
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    a = axes[0]
    for method in METHODS:
        rows = sorted((r["n_ctx"], r["ppl"]) for r in results if r["method"] == method)
        if rows:
            a.plot([c for c, _ in rows], [p for _, p in rows], marker="o", label=method)
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.axvline(8192, color="grey", linestyle=":", label="trained context")
    a.set_xlabel("context size (tokens)")
    a.set_ylabel("perplexity (log scale)")
    a.set_title("SmolLM2-135M (trained at 8192) on Alice")
    a.legend(fontsize=8)
    # Mean NLL by position at the two longest contexts.
    for b, ctx in zip(axes[1:], (16384, 32768)):
        for method in METHODS:
            for r in results:
                if r["n_ctx"] != ctx or r["method"] != method:
                    continue
                pts = [((bk["from"] + bk["to"]) / 2, bk["mean_nll"])
                       for bk in r["buckets"] if bk["mean_nll"] is not None]
                b.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=method)
        b.axvline(8192, color="grey", linestyle=":")
        b.set_xlabel(f"position in the {ctx}-token window")
        b.set_ylabel("mean NLL of the bucket")
        b.set_title(f"mean NLL by position, context {ctx}")
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "long_context.png"), dpi=100)


def table(results):
    ctxs = sorted({r["n_ctx"] for r in results})
    lines = ["| method | " + " | ".join(f"{c}" for c in ctxs) + " |",
             "|---|" + "---|" * len(ctxs)]
    for method in METHODS:
        by_ctx = {r["n_ctx"]: r["ppl"] for r in results if r["method"] == method}
        if by_ctx:
            cells = [f"{by_ctx[c]:.2f}" if c in by_ctx else "" for c in ctxs]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bucket_table(results, ctx):
    """Mean NLL by position bucket of every method at context `ctx`."""
    rows = [r for r in results if r["n_ctx"] == ctx]
    if not rows:
        return ""
    edges = [(b["from"], b["to"]) for b in rows[0]["buckets"]]
    lines = ["| method | " + " | ".join(f"{lo // 1024}-{hi // 1024}k" for lo, hi in edges) + " |",
             "|---|" + "---:|" * len(edges)]
    for method in METHODS:
        for r in rows:
            if r["method"] == method:
                cells = [f"{b['mean_nll']:.3f}" if b["mean_nll"] is not None else ""
                         for b in r["buckets"]]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default="target/release/ropewalk")
    p.add_argument("--ctx", default=",".join(map(str, CTX)))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--cache-type", default="f16")
    p.add_argument("--out", default="docs/long_context")
    p.add_argument("--plot-only", action="store_true")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.jsonl")
    results = []
    if os.path.exists(path):
        with open(path) as f:
            results = [json.loads(line) for line in f if line.strip()]
    if not args.plot_only:
        done = {(r["method"], r["n_ctx"]) for r in results}
        for ctx in map(int, args.ctx.split(",")):
            for method in args.methods.split(","):
                if (method, ctx) in done:
                    continue
                report = run(args.binary, method, ctx, args.cache_type)
                results.append(report)
                with open(path, "a") as f:
                    f.write(json.dumps(report) + "\n")
    print(table(results))
    for ctx in (16384, 32768):
        text = bucket_table(results, ctx)
        if text:
            print(f"\nmean NLL by position at context {ctx}\n\n{text}")
    if results:
        plot(results, args.out)


if __name__ == "__main__":
    main()
