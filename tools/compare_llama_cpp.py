#!/usr/bin/env python3
"""Side-by-side speed of ropewalk and llama.cpp on the same model files, same threads.

Makes the model files under .cache/bench/ (once): the test model requantized by
llama-quantize to Q4_0, Q8_0, Q4_K_M and Q4_1 (the original is Q4_1 with a Q8_0
embedding, so every row is requantized from it the same way), and a Llama-2-7B-shaped
random-weight Q4_0 model written by `ropewalk random-model`. Then, for several rounds,
runs `llama-bench` and `ropewalk bench` one after the other on each file (the order
flips every round, so drift in the machine's state hits both), and reports for each
test the median over every repetition of every round, and the ratio ropewalk /
llama.cpp. Around the runs it measures the machine's read bandwidth
(tools/measure_bandwidth.c) and the 7B token-generation ceiling that implies: bytes of
weights read per token / bandwidth.

    tools/compare_llama_cpp.py                         # everything: 3 rounds of 5 reps
    tools/compare_llama_cpp.py --only smollm2-q4_0 --rounds 1 --reps 1   # quick check
    tools/compare_llama_cpp.py --list                  # the rows
    tools/compare_llama_cpp.py --isa avx2              # both engines held to AVX2+FMA

Needs tools/build_llama_cpp.sh (run here if llama.cpp is not built yet: about 13 minutes
on 2 cores), cargo and cc. Prints a markdown table and writes every sample as JSON
(--json-out). The full run takes about 20 minutes on 2 cores, most of it the 7B row
(`--only llama2-7b-q4_0 --pp 128 --tg 32` for a shorter one). Run it on a quiet machine:
llama.cpp's threads spin while they wait for each other, so its speed collapses when
anything else wants the cores (the script warns when the load average says so).
Both tools process a 512-token prompt as one batch (llama-bench: -b 2048 -ub 512;
ropewalk: -b 512); llama.cpp keeps its defaults otherwise (mmap, weight repacking).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
BENCH = CACHE / "bench"
# llama.cpp's build directory by --isa: native (-march=native), or AVX2 only (what a
# laptop without AVX-512 runs; ropewalk then runs with ROPEWALK_CPU=avx2).
LLAMA_BUILDS = {"native": "build", "avx2": "build-avx2"}
LLAMA_BIN = CACHE / "llama.cpp" / "build" / "bin"
ROPEWALK = ROOT / "target" / "release" / "ropewalk"
TEST_MODEL = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

# name -> how the file is made and what the table calls it
ROWS = {
    "smollm2-q4_0": {"label": "SmolLM2-135M Q4_0", "quantize": "Q4_0"},
    "smollm2-q8_0": {"label": "SmolLM2-135M Q8_0", "quantize": "Q8_0"},
    "smollm2-q4_k_m": {"label": "SmolLM2-135M Q4_K_M", "quantize": "Q4_K_M"},
    "smollm2-q4_1": {"label": "SmolLM2-135M Q4_1", "quantize": "Q4_1"},
    "llama2-7b-q4_0": {
        "label": "Llama-2-7B shape, random, Q4_0",
        "random": ["--shape", "llama2-7b", "--type", "q4_0"],
    },
}
SEVEN_B = "llama2-7b-q4_0"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs cmd; on failure stops with the tail of its output."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
        sys.exit(f"compare_llama_cpp: {Path(str(cmd[0])).name} failed ({p.returncode}):\n{tail}")
    return p.stdout


def load_average():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def model_path(name):
    return BENCH / f"{name}.gguf"


def make_model(name, threads):
    out = model_path(name)
    if out.exists():
        return out
    row = ROWS[name]
    tmp = out.with_suffix(".gguf.tmp")
    if "quantize" in row:
        if not TEST_MODEL.exists():
            sys.exit(f"compare_llama_cpp: {TEST_MODEL} is missing: run tools/setup.sh first")
        log(f"making {out.name} with llama-quantize")
        run([LLAMA_BIN / "llama-quantize", "--allow-requantize", TEST_MODEL, tmp,
             row["quantize"], threads])
        tmp.rename(out)
    else:
        log(f"making {out.name} with ropewalk random-model")
        run([ROPEWALK, "random-model", *row["random"], "-o", out])
    return out


def bandwidth(mib, passes, threads):
    exe = BENCH / "measure_bandwidth"
    src = ROOT / "tools" / "measure_bandwidth.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        run(["cc", "-O3", "-march=native", "-pthread", src, "-o", exe])
    counts = sorted({1, threads})
    return json.loads(run([exe, mib, passes, *counts]))


def bytes_per_token(path):
    """Weight bytes one generated token reads: every tensor but the embedding table, of
    which it reads one row."""
    info = json.loads(run([ROPEWALK, "info", "--json", path]))
    total = 0
    for t in info["tensors"]:
        if t["name"] == "token_embd.weight":
            total += t["bytes"] // t["shape"][-1]
        else:
            total += t["bytes"]
    return total


def llama_bench(path, a):
    out = run([LLAMA_BIN / "llama-bench", "-m", path, "-p", a.pp, "-n", a.tg, "-t", a.threads,
               "-r", a.reps, "-o", "json"])
    return json.loads(out)


def ropewalk_bench(path, a, extra=()):
    out = run([ROPEWALK, "bench", "-m", path, "-p", a.pp, "-n", a.tg, "-t", a.threads,
               "-r", a.reps, "-o", "json", *extra])
    return json.loads(out)


def ropewalk_no_repack(path, a):
    return ropewalk_bench(path, a, ["--no-repack"])


def test_name(r):
    return f"pp{r['n_prompt']}" if r["n_prompt"] > 0 else f"tg{r['n_gen']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated rows (see --list); default all")
    ap.add_argument("--list", action="store_true", help="print the rows and exit")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per run (default 5)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--isa", choices=sorted(LLAMA_BUILDS), default="native",
                    help="instruction sets both engines may use (default: all the CPU has)")
    ap.add_argument("--pp", type=int, default=512, help="prompt length (default 512)")
    ap.add_argument("--tg", type=int, default=128, help="tokens generated (default 128)")
    ap.add_argument("--no-bandwidth", action="store_true", help="skip the bandwidth runs")
    ap.add_argument("--no-repack-too", action="store_true",
                    help="also run ropewalk --no-repack on the Q4_0 rows (the effect of "
                         "repacking at load, measured in the same rounds)")
    ap.add_argument("--bw-mib", type=int, default=2048, help="bandwidth buffer (MiB)")
    ap.add_argument("--no-build", action="store_true",
                    help="use target/release/ropewalk as it is")
    ap.add_argument("--json-out", type=Path, default=BENCH / "compare.json")
    a = ap.parse_args()
    if a.list:
        for name, row in ROWS.items():
            print(f"{name:16} {row['label']}")
        return
    names = list(ROWS) if not a.only else [n.strip() for n in a.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        sys.exit(f"compare_llama_cpp: unknown row {', '.join(unknown)} (rows: {', '.join(ROWS)})")
    if a.rounds < 1 or a.reps < 1 or a.threads < 1 or a.pp < 0 or a.tg < 0 or a.pp + a.tg == 0:
        sys.exit("compare_llama_cpp: --rounds, --reps and --threads must be at least 1, "
                 "and --pp or --tg above 0")

    BENCH.mkdir(parents=True, exist_ok=True)
    global LLAMA_BIN
    LLAMA_BIN = CACHE / "llama.cpp" / LLAMA_BUILDS[a.isa] / "bin"
    run([ROOT / "tools" / "build_llama_cpp.sh"], env=dict(os.environ, ISA=a.isa))
    if a.isa != "native":
        os.environ["ROPEWALK_CPU"] = a.isa
    if not a.no_build:
        log("cargo build --release")
        run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    if not ROPEWALK.exists():
        sys.exit(f"compare_llama_cpp: {ROPEWALK} is missing: cargo build --release")
    paths = {n: make_model(n, a.threads) for n in names}
    if not a.no_bandwidth:
        paths.setdefault(SEVEN_B, make_model(SEVEN_B, a.threads))

    result = {
        "cpu": next((line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "?"),
        "threads": a.threads, "rounds": a.rounds, "reps": a.reps,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "kernels": os.environ.get("ROPEWALK_CPU", "auto"),
        "llama_cpp_isa": a.isa,
    }
    load = load_average()
    result["load_before"] = load
    if load is not None and load > 0.5:
        log(f"warning: load average {load:.1f}: something else is running. llama.cpp's threads "
            "spin while they wait, so its speed collapses (10x and more) when cores are "
            "shared; on a busy machine the ratios are noise")
    if not a.no_bandwidth:
        log("measuring read bandwidth")
        result["bandwidth_before"] = bandwidth(a.bw_mib, 10, a.threads)

    # samples[(row, test)][engine] = {"samples_ts": [...], "round_means": [...]}
    samples = {}
    engines = [("llama.cpp", llama_bench), ("ropewalk", ropewalk_bench)]
    if a.no_repack_too:
        engines.append(("ropewalk --no-repack", ropewalk_no_repack))
    result["load_by_round"] = []
    for rnd in range(a.rounds):
        result["load_by_round"].append(load_average())
        order = engines if rnd % 2 == 0 else engines[::-1]
        for name in names:
            for engine, bench in order:
                if engine == "ropewalk --no-repack" and "q4_0" not in name:
                    continue
                rows = bench(paths[name], a)
                if engine == "llama.cpp":
                    result.setdefault("llama_cpp_build", f"{rows[0].get('build_commit')} "
                                      f"({rows[0].get('build_number')})")
                shown = []
                for r in rows:
                    s = samples.setdefault((name, test_name(r)), {}).setdefault(
                        engine, {"samples_ts": [], "round_means": []})
                    s["samples_ts"].extend(r["samples_ts"])
                    s["round_means"].append(r["avg_ts"])
                    shown.append(f"{test_name(r)} {r['avg_ts']:.2f}")
                log(f"round {rnd + 1}/{a.rounds} {name} {engine}: {', '.join(shown)}")

    if not a.no_bandwidth:
        log("measuring read bandwidth again")
        result["bandwidth_after"] = bandwidth(a.bw_mib, 10, a.threads)

    table = []
    for (name, test), by_engine in samples.items():
        entry = {"row": name, "model": ROWS[name]["label"], "test": test}
        for engine, s in by_engine.items():
            entry[engine] = dict(s, median_ts=statistics.median(s["samples_ts"]))
        l, r = entry.get("llama.cpp"), entry.get("ropewalk")
        entry["ratio"] = r["median_ts"] / l["median_ts"] if l and r and l["median_ts"] else None
        table.append(entry)
    result["rows"] = table

    lines = [f"{a.threads} threads, {a.rounds} rounds x {a.reps} repetitions, medians of "
             f"tokens/s over all of them; llama.cpp {result.get('llama_cpp_build', '?')}",
             "", "| model | test | llama.cpp t/s | ropewalk t/s | ratio |"
             + (" ropewalk --no-repack t/s |" if a.no_repack_too else ""),
             "|---|---|---:|---:|---:|" + ("---:|" if a.no_repack_too else "")]
    for e in table:
        line = (f"| {e['model']} | {e['test']} | {e['llama.cpp']['median_ts']:.2f} | "
                f"{e['ropewalk']['median_ts']:.2f} | {e['ratio']:.2f} |")
        if a.no_repack_too:
            plain = e.get("ropewalk --no-repack")
            line += f" {plain['median_ts']:.2f} |" if plain else " |"
        lines.append(line)

    if not a.no_bandwidth:
        per_token = bytes_per_token(paths[SEVEN_B])
        ceiling = {"bytes_per_token": per_token}
        lines += ["", f"7B Q4_0 generation reads {per_token / 1e9:.2f} GB of weights per token.",
                  "", "| read bandwidth | threads | best GB/s | median GB/s "
                  "| 7B tg ceiling t/s (best / median) |",
                  "|---|---:|---:|---:|---:|"]
        for when in ("before", "after"):
            for bw in result[f"bandwidth_{when}"]["results"]:
                best = bw["best_gbs"] * 1e9 / per_token
                median = bw["median_gbs"] * 1e9 / per_token
                ceiling[f"{when}_{bw['threads']}t_tok_s"] = {"best": best, "median": median}
                lines.append(f"| {when} the runs | {bw['threads']} | {bw['best_gbs']:.1f} | "
                             f"{bw['median_gbs']:.1f} | {best:.1f} / {median:.1f} |")
        for e in table:
            if e["row"] == SEVEN_B and e["test"].startswith("tg"):
                for engine in ("llama.cpp", "ropewalk"):
                    gbs = e[engine]["median_ts"] * per_token / 1e9
                    ceiling[f"{engine}_weights_gbs"] = gbs
                    lines.append(f"\n{engine} 7B {e['test']}: {e[engine]['median_ts']:.2f} t/s "
                                 f"= {gbs:.1f} GB/s of weights")
        result["ceiling_7b"] = ceiling

    print("\n".join(lines))
    a.json_out.parent.mkdir(parents=True, exist_ok=True)
    a.json_out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"all samples: {a.json_out}")


if __name__ == "__main__":
    main()
