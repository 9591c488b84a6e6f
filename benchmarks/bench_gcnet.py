"""GCNet benchmark: accuracy on the held-out Middlebury scenes (vs `sgm`) and on unseen synthetic scenes (vs every
classical matcher), inference time and peak memory on `sample`, and the training runs of the shipped weights.

    python benchmarks/bench_gcnet.py [--weights PATH] [--threads 2] [--synthetic synthetic:6:5000] [--out benchmarks/results_gcnet.md]

Prints Markdown and writes it to `--out`. Scores come from eval.metrics.evaluate_pair (KITTI background fill of
invalid estimates, then D1-all / bad-2.0 / EPE over all pixels with valid GT). Held-out scenes are run at their
native size with max_disp = the GT maximum rounded up to 16 (GCNet's scale="auto" downsizes when that exceeds its
trained 64) and also at scale 0.5 (the scale GCNet was fine-tuned at).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSICAL = ("bm-sad", "bm-ssd", "bm-ncc", "bm-census", "sgm", "opencv-bm", "opencv-sgbm", "opencv-sgbm-hh",
             "opencv-sgbm-3way")


def score(pred, pair) -> dict:
    from eval.metrics import evaluate_pair

    r = evaluate_pair(pred, pair.gt, nonocc=pair.nonocc)
    out = {"all": {k: r.all[k] for k in ("bad-2.0", "D1-all", "EPE")}}
    if r.noc is not None:
        out["noc"] = {k: r.noc[k] for k in ("bad-2.0", "D1-all", "EPE")}
    return out


def run(pair, method: str, max_disp: int, **params) -> tuple[np.ndarray, float]:
    from stereokit.api import run_matcher

    t = time.perf_counter()
    disp = run_matcher(pair, method, max_disp, **params)
    return disp, time.perf_counter() - t


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def heldout_table(weights: str | None) -> tuple[str, dict]:
    from learned.common import shared_data_dir
    from learned.splits import VALIDATION_SCENES
    from stereokit.datasets import open_dataset

    data = shared_data_dir()
    if data is None:
        return "_held-out scenes skipped: ../shared/data not present_\n", {}
    ds = open_dataset(f"middlebury:{data}")
    rows, results = [], {}
    methods = [("sgm", {}), ("gcnet", {"weights": weights}), ("gcnet scale=0.5", {"weights": weights, "scale": 0.5})]
    pooled = {m: {"bad": 0.0, "d1": 0.0, "n": 0} for m, _ in methods}
    for name in VALIDATION_SCENES:
        pair = ds[name]
        from stereokit.validation import max_disp_from_gt

        max_disp = max_disp_from_gt(float(np.nanmax(pair.gt)), pair.width)
        for label, params in methods:
            method = label.split()[0]
            params = {k: v for k, v in params.items() if v is not None}
            disp, secs = run(pair, method, max_disp, **params)
            s = score(disp, pair)
            results.setdefault(name, {})[label] = {**s, "seconds": secs, "max_disp": max_disp}
            n = int(np.isfinite(pair.gt).sum())
            pooled[label]["bad"] += s["all"]["bad-2.0"] * n
            pooled[label]["d1"] += s["all"]["D1-all"] * n
            pooled[label]["n"] += n
            noc = s.get("noc", {})
            rows.append(f"| {name} | {max_disp} | {label} | {_fmt(s['all']['bad-2.0'])} | {_fmt(s['all']['D1-all'])} | "
                        f"{_fmt(s['all']['EPE'])} | {_fmt(noc.get('bad-2.0'))} | {secs:.1f} |")
    for label, p in pooled.items():
        rows.append(f"| **all 3 (pixel-pooled)** | | {label} | **{_fmt(p['bad'] / p['n'])}** | **{_fmt(p['d1'] / p['n'])}** | | | |")
        results.setdefault("pooled", {})[label] = {"bad-2.0": p["bad"] / p["n"], "D1-all": p["d1"] / p["n"]}
    head = ("| scene | max_disp | method | bad-2.0 % (all) | D1-all % | EPE px | bad-2.0 % (noc) | s |\n"
            "|---|---|---|---|---|---|---|---|\n")
    return head + "\n".join(rows) + "\n", results


def synthetic_table(spec: str, weights: str | None) -> tuple[str, dict]:
    from stereokit.datasets import open_dataset
    from stereokit.registry import matchers

    ds = open_dataset(spec)
    max_disp = 48  # the synthetic spec's scenes have disparities 0-47
    methods = [m for m in CLASSICAL if m in matchers] + ["gcnet"]
    acc = {m: {"bad": 0.0, "d1": 0.0, "epe": 0.0, "n": 0, "s": 0.0} for m in methods}
    for pair in ds:
        n = int(np.isfinite(pair.gt).sum())
        for m in methods:
            try:
                disp, secs = run(pair, m, max_disp, **({"weights": weights} if m == "gcnet" and weights else {}))
            except Exception as exc:  # a matcher still being written must not sink the benchmark
                print(f"warning: {m} failed on {pair.name}: {exc}", file=sys.stderr)
                acc[m]["n"] = -1
                continue
            if acc[m]["n"] < 0:
                continue
            s = score(disp, pair)["all"]
            acc[m]["bad"] += s["bad-2.0"] * n
            acc[m]["d1"] += s["D1-all"] * n
            acc[m]["epe"] += s["EPE"] * n
            acc[m]["n"] += n
            acc[m]["s"] += secs
    rows, results = [], {}
    for m, a in sorted(acc.items(), key=lambda kv: kv[1]["bad"] / kv[1]["n"] if kv[1]["n"] > 0 else 1e9):
        if a["n"] <= 0:
            rows.append(f"| {m} | failed | | | |")
            continue
        r = {"bad-2.0": a["bad"] / a["n"], "D1-all": a["d1"] / a["n"], "EPE": a["epe"] / a["n"], "seconds": a["s"] / len(ds)}
        results[m] = r
        rows.append(f"| {m} | {_fmt(r['bad-2.0'])} | {_fmt(r['D1-all'])} | {_fmt(r['EPE'])} | {r['seconds']:.2f} |")
    head = (f"{len(ds)} scenes of `{spec}` (240x320, disparities 0-47, seeds never used in training), max_disp 48; "
            "pixel-pooled over all pixels.\n\n| method | bad-2.0 % | D1-all % | EPE px | s / pair |\n|---|---|---|---|---|\n")
    return head + "\n".join(rows) + "\n", results


_TIMING = r"""
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from stereokit.datasets import open_dataset
from learned.gcnet.matcher import gcnet, load_model
w = sys.argv[2] if sys.argv[2] != "-" else None
pair = open_dataset("sample")[0]
load_model(w); pair.left_float, pair.right_float
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); disp = gcnet(pair, 64, weights=w); times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"times": times, "peak_rss_mb": peak / 1024, "base_rss_mb": base / 1024,
                  "shape": list(disp.shape)}))
"""


def timing(weights: str | None, threads: int, repeats: int) -> dict:
    """Inference on `sample` (741x500, max_disp 64) in a fresh process, so its peak RSS is GCNet's alone."""
    out = subprocess.run([sys.executable, "-c", _TIMING, str(threads), weights or "-", str(repeats)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def training_table(weights_json: Path) -> str:
    if not weights_json.is_file():
        return "_no training metadata_\n"
    meta = json.loads(weights_json.read_text())
    runs = meta.get("runs", [meta])
    rows = ["| run | data | init | optimiser | iterations | crop x batch | wall min | val EPE | val bad-2.0 % |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        val = r.get("validation", {}).get("at_end", {})
        data = ", ".join(f"{d['spec']} ({d['pairs']} pairs)" for d in r.get("data", []))
        rows.append(f"| {r.get('name', '-')} | {data} | {Path(r['init']).name if r.get('init') else '-'} | "
                    f"{r['optimizer']['name']} lr {r['optimizer']['lr']:g} | {r['iterations']} | "
                    f"{r['crop'][0]}x{r['crop'][1]} x {r['batch']} | {r['train_wall_s'] / 60:.0f} | "
                    f"{_fmt(val.get('epe'))} | {_fmt(val.get('bad2'))} |")
    note = ("\nValidation: the held-out scenes (teddy, Art, Wood2) at half scale, max_disp 64, EPE and bad-2.0 in "
            "half-scale pixels (so bad-2.0 there is bad-4.0 at full size).\n")
    return "\n".join(rows) + "\n" + note


def targets(record: dict) -> str:
    """Met / missed, from the figures above."""
    lines = []
    held = record.get("heldout", {}).get("pooled", {})
    if held:
        g, s = held["gcnet"], held["sgm"]
        ok = g["bad-2.0"] < s["bad-2.0"] and g["D1-all"] < s["D1-all"]
        lines.append(f"- held-out scenes, gcnet better than sgm (bad-2.0, D1-all pooled): **{'met' if ok else 'MISSED'}** "
                     f"({_fmt(g['bad-2.0'])} / {_fmt(g['D1-all'])} vs {_fmt(s['bad-2.0'])} / {_fmt(s['D1-all'])})")
    syn = record.get("synthetic", {})
    if "gcnet" in syn and len(syn) > 1:
        best = min((v["bad-2.0"], k) for k, v in syn.items() if k != "gcnet")
        ok = syn["gcnet"]["bad-2.0"] < 0.5 * best[0]
        lines.append(f"- synthetic scenes, gcnet far better (taken as < half the bad-2.0) than every classical matcher: "
                     f"**{'met' if ok else 'MISSED'}** ({_fmt(syn['gcnet']['bad-2.0'])} vs best {best[1]} {_fmt(best[0])})")
    t = record.get("timing")
    if t:
        med = float(np.median(t["times"]))
        lines.append(f"- `sample` 741x500, max_disp 64 within 10 s: **{'met' if med <= 10 else 'MISSED'}** ({med:.2f} s median, "
                     f"peak RSS {t['peak_rss_mb']:.0f} MB)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="GCNet weights (default: the shipped compact weights)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for the timing (default 2 = this machine)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--synthetic", default="synthetic:6:5000")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results_gcnet.md"))
    p.add_argument("--skip", nargs="*", default=[], choices=("heldout", "synthetic", "timing"))
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from learned.gcnet.matcher import DEFAULT_WEIGHTS

    weights_path = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    parts = ["# GCNet benchmark\n", f"Weights: `{weights_path.relative_to(ROOT) if weights_path.is_relative_to(ROOT) else weights_path}`; "
             f"torch {torch.__version__}, {os.cpu_count()} CPU cores, torch threads {args.threads}.\n"]
    record: dict = {}
    if "heldout" not in args.skip:
        text, record["heldout"] = heldout_table(args.weights)
        parts += ["## Held-out real scenes (never trained on): gcnet vs sgm\n", text]
    if "synthetic" not in args.skip:
        text, record["synthetic"] = synthetic_table(args.synthetic, args.weights)
        parts += ["## Unseen synthetic scenes: gcnet vs the classical matchers\n", text]
    if "timing" not in args.skip:
        t = timing(args.weights, args.threads, args.repeats)
        record["timing"] = t
        parts += ["## Inference on `sample` (741x500, max_disp 64)\n",
                  f"| median s | min s | runs | peak RSS MB (process) | RSS before inference MB (torch + model + images) |\n|---|---|---|---|---|\n"
                  f"| {np.median(t['times']):.2f} | {min(t['times']):.2f} | {len(t['times'])} | {t['peak_rss_mb']:.0f} | "
                  f"{t['base_rss_mb']:.0f} |\n",
                  "Target: within 10 s on this CPU. The machine is shared: times are wall-clock under whatever load "
                  "other processes put on it.\n"]
    parts += ["## Training runs of the shipped weights\n", training_table(weights_path.with_suffix(".json"))]
    parts += ["## Targets (issue #5 section 4)\n", targets(record)]
    text = "\n".join(parts)
    print(text)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
