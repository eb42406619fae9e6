#!/usr/bin/env python3
"""Plot 7B Q4_0 generation speed against the number of layers offloaded to the GPU.

Reads a llama-bench-style JSON sweep written by `ropewalk bench` (a list of rows with
`n_gpu_layers`, `test` and `samples_ts`), takes its tg64 rows, and draws ropewalk's
median tokens/s (bars from the slowest to the fastest repetition: a GPU's first timed
run can be slow while its clocks rise) beside the llama.cpp Vulkan backend's numbers,
held below as constants. Those were measured on an H100 through Vulkan; ropewalk's now
come from an H200, which copies about 28% faster. 33 layers means all 32 layers plus the
output layer.

  python3 tools/gpu_offload_plot.py [--input docs/gpu/sweep-7b.json]
      [--output docs/gpu/offload.png]

Needs matplotlib (e.g. `.cache/venv/bin/python tools/gpu_offload_plot.py`).
"""
import argparse
import json
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

TEST = "tg64"
TITLE = "7B Q4_0 generation by layers offloaded (Vulkan; ropewalk H200, llama.cpp H100)"

# llama.cpp's Vulkan backend, tg64 tokens/s by layers offloaded: (value, low, high).
# At 32 layers it ranged 155-177 over runs; the midpoint is drawn with the range as
# its error bar.
LLAMA_CPP = {
    0: (14, 14, 14),
    8: (17, 17, 17),
    16: (22, 22, 22),
    24: (33, 33, 33),
    32: (166, 155, 177),
    33: (252, 252, 252),
}


def load(path):
    with open(path) as f:
        rows = json.load(f)
    points = sorted(
        (r["n_gpu_layers"], statistics.median(r["samples_ts"]), min(r["samples_ts"]),
         max(r["samples_ts"]))
        for r in rows
        if r.get("test") == TEST
    )
    if not points:
        raise SystemExit(f"{path}: no {TEST} rows")
    return points


def plot(points, output):
    fig, ax = plt.subplots(figsize=(8, 5))

    xs = [p[0] for p in points]
    err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
    ax.errorbar(xs, [p[1] for p in points], yerr=err, marker="o", capsize=4,
                label="ropewalk (median, slowest to fastest run)")

    lx = sorted(LLAMA_CPP)
    ly = [LLAMA_CPP[x][0] for x in lx]
    lerr = [[LLAMA_CPP[x][0] - LLAMA_CPP[x][1] for x in lx],
            [LLAMA_CPP[x][2] - LLAMA_CPP[x][0] for x in lx]]
    ax.errorbar(lx, ly, yerr=lerr, marker="s", linestyle="--", capsize=4,
                label="llama.cpp (Vulkan)")

    ticks = sorted(set(xs) | set(lx))
    ax.set_xticks(ticks)
    labels = ax.set_xticklabels(["33 (+output)" if t == 33 else str(t) for t in ticks])
    # 32 and 33 sit one unit apart: push their labels away from each other.
    if 32 in ticks and 33 in ticks:
        labels[ticks.index(32)].set_horizontalalignment("right")
        labels[ticks.index(33)].set_horizontalalignment("left")
    ax.set_xlim(min(ticks) - 1.5, max(ticks) + 3)

    ax.set_yscale("log")
    ax.set_yticks([10, 20, 50, 100, 200, 300])
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())

    ax.set_xlabel("layers on the GPU")
    ax.set_ylabel(f"generation tokens/s ({TEST}, log scale)")
    ax.set_title(TITLE)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(output, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="docs/gpu/sweep-7b.json")
    ap.add_argument("--output", default="docs/gpu/offload.png")
    args = ap.parse_args()
    plot(load(args.input), args.output)


if __name__ == "__main__":
    main()
