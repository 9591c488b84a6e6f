"""MC-CNN targets: accuracy on the held-out scenes against `sgm` and `opencv-sgbm-hh`, inference time on `sample`,
and the table of training runs.

    python benchmarks/bench_mccnn.py [--runs 3] [--skip-accuracy] [--skip-timing] [--out benchmarks/results_mccnn.md]

Accuracy: each matcher with its default options (MC-CNN: the paper's "middlebury" preset; then again with
`preset="tuned"`, searched for the shipped weights on the training scenes by tune_mccnn_preset.py) on the
held-out Middlebury scenes (learned.splits.VALIDATION_SCENES, never trained on) and on `sample` (Middlebury 2014
Motorcycle, not trained on either); max_disp per scene = its GT maximum rounded up to a multiple of 16 (64 for
`sample`), scored by `eval.metrics.evaluate_pair` (invalid estimates filled by the KITTI background interpolation;
bad-2.0 and D1-all over all pixels with ground truth, plus the non-occluded region).
The held-out rows end with the pixel-weighted total over the three scenes.

Timing: `sample` (741x500, max_disp 64) after the model is loaded and the Numba kernels compiled (one warm-up call),
median of `--runs` calls (mccnn-fast with the default and the "tuned" preset), with torch / Numba using all cores;
the load average is printed beside it (the machine is shared, so timings are noisy). The per-step split (network
cost volume, aggregation of both views) is given for one call.

Training runs: read from learned/weights/mccnn_*.json (written by `stereokit train mccnn ... --export`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BASELINES = ["sgm", "opencv-sgbm-hh"]


def _max_disp(pair) -> int:
    from stereokit.validation import max_disp_from_gt

    return max_disp_from_gt(float(np.nanmax(pair.gt)), pair.width)


def _mccnn_matchers() -> list[str]:
    from learned.mccnn.weights import shipped_weights

    return [f"mccnn-{a}" for a in ("fast", "acrt") if shipped_weights(a).exists()]


def _entries(mccnn: list[str]) -> list[tuple[str, str, dict]]:
    """(label, matcher, options): each MC-CNN matcher with its default (the paper's) preset, then with the preset
    tuned for the shipped weights (`preset="tuned"`, see presets.py) where its architecture has one."""
    from learned.mccnn.presets import PRESETS

    out = [(m, m, {}) for m in mccnn]
    return out + [(f"{m} preset=tuned", m, {"preset": "tuned"}) for m in mccnn
                  if ("tuned", m.split("-")[1]) in PRESETS]


def accuracy(entries: list[tuple[str, str, dict]]) -> tuple[str, dict]:
    import stereokit
    from eval.metrics import evaluate_dataset, evaluate_pair
    from learned.common import shared_data_dir
    from learned.splits import VALIDATION_SCENES
    from stereokit.datasets import open_dataset

    pairs = []
    root = shared_data_dir()
    if root is not None:
        ds = open_dataset(f"middlebury:{root}")
        pairs += [(ds[n], _max_disp(ds[n])) for n in VALIDATION_SCENES if n in ds.names]
    sample = open_dataset("sample")[0]
    pairs.append((sample, 64))
    matchers = [label for label, _, _ in entries]
    results: dict = {m: {} for m in matchers}
    times: dict = {m: {} for m in matchers}
    for pair, md in pairs:
        for m, name, options in entries:
            t = time.perf_counter()
            disp = stereokit.run_matcher(pair, name, md, **options)
            times[m][pair.name] = time.perf_counter() - t
            results[m][pair.name] = evaluate_pair(disp, pair.gt, nonocc=pair.nonocc)
            r = results[m][pair.name].to_dict()
            print(f"{pair.name:10s} {m:26s} bad-2.0 {r['all']['bad-2.0']:6.2f}  D1-all {r['all']['D1-all']:6.2f}"
                  f"  ({times[m][pair.name]:.1f} s)", flush=True)
    held = [p.name for p, _ in pairs if p.name != sample.name]
    lines = ["### Accuracy (bad-2.0 / D1-all, %, invalid filled as KITTI; `all` pixels with GT, `noc` non-occluded)", "",
             "| scene | max_disp | " + " | ".join(matchers) + " |", "|---|---|" + "---|" * len(matchers)]
    summary: dict = {}
    for pair, md in pairs:
        cells = []
        for m in matchers:
            r = results[m][pair.name].to_dict()
            noc = r.get("noc", {})
            cells.append(f"{r['all']['bad-2.0']:.2f} / {r['all']['D1-all']:.2f}"
                         + (f" (noc {noc['bad-2.0']:.2f} / {noc['D1-all']:.2f})" if noc else ""))
            summary.setdefault(m, {})[pair.name] = r
        lines.append(f"| {pair.name} | {md} | " + " | ".join(cells) + " |")
    if held:
        cells = []
        for m in matchers:
            agg = evaluate_dataset("held-out", {n: results[m][n] for n in held}).to_dict()["aggregate"]["kitti"]
            summary[m]["held-out total"] = agg
            cells.append(f"**{agg['all']['bad-2.0']:.2f} / {agg['all']['D1-all']:.2f}**"
                         + (f" (noc {agg['noc']['bad-2.0']:.2f} / {agg['noc']['D1-all']:.2f})" if "noc" in agg else ""))
        lines.append(f"| held-out total ({', '.join(held)}) | | " + " | ".join(cells) + " |")
    lines += ["", "Wall time per call in this run (s, includes model load / JIT on the first call): "
              + "; ".join(f"{m}: " + ", ".join(f"{n} {t:.1f}" for n, t in times[m].items()) for m in matchers), ""]
    return "\n".join(lines), summary


def timing(entries: list[tuple[str, str, dict]], runs: int) -> tuple[str, dict]:
    import inspect

    import stereokit
    import torch
    from learned.mccnn.matcher import aggregate
    from learned.mccnn.model import mccnn_cost_volume, normalize_image
    from learned.mccnn.presets import preset_params
    from learned.mccnn.weights import load_model
    from stereokit.datasets import open_dataset

    pair = open_dataset("sample")[0]
    out = {}
    lines = ["### Inference time: sample 741x500, max_disp 64 (after model load and JIT)", "",
             f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at start", "",
             "| matcher | median s | min s | cost volume s | aggregation s (both views) |", "|---|---|---|---|---|"]
    for label, m, options in entries:
        arch = m.split("-")[1]
        # the preset the timed runs use: the given one, else the matcher's own default
        preset = options.get("preset", inspect.signature(stereokit.matchers[m]).parameters["preset"].default)
        stereokit.run_matcher(pair, m, 64, **options)  # warm-up: loads weights, compiles
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            stereokit.run_matcher(pair, m, 64, **options)
            ts.append(time.perf_counter() - t)
        model = load_model(arch)
        L, R = normalize_image(pair.left_gray), normalize_image(pair.right_gray)
        t = time.perf_counter()
        vol = mccnn_cost_volume(model, L, R, 64, normalize=False)
        t_cost = time.perf_counter() - t
        t = time.perf_counter()
        aggregate(vol, L, R, preset_params(preset, arch))
        t_agg = 2 * (time.perf_counter() - t)
        out[label] = {"median_s": statistics.median(ts), "min_s": min(ts), "cost_s": t_cost, "aggregation_s": t_agg}
        lines.append(f"| {label} | {out[label]['median_s']:.2f} | {out[label]['min_s']:.2f} | {t_cost:.2f} | "
                     f"{t_agg:.2f} |")
        print(lines[-1], flush=True)
    if "mccnn-acrt" not in {m for _, m, _ in entries}:
        # No accurate weights shipped: time its network cost volume (the dominant step; the values of the weights
        # do not change the time) with a random network on a band of rows, extrapolated to the full image.
        from learned.mccnn.model import AccurateNet

        torch.manual_seed(0)
        net = AccurateNet("middlebury")
        L, R = normalize_image(pair.left_gray), normalize_image(pair.right_gray)
        rows = 50
        t = time.perf_counter()
        mccnn_cost_volume(net, L[:rows], R[:rows], 64, normalize=False)
        t_band = time.perf_counter() - t
        est = t_band * pair.height / rows
        out["mccnn-acrt (cost volume only, extrapolated)"] = {"cost_s": est, "band_rows": rows, "band_s": t_band}
        lines.append(f"| mccnn-acrt (no weights shipped: network cost volume only, random weights, {rows} rows "
                     f"timed = {t_band:.1f} s, extrapolated) | | | ~{est:.0f} | |")
        print(lines[-1], flush=True)
    lines += ["", f"load average {os.getloadavg()[0]:.1f} at end", ""]
    return "\n".join(lines), out


def training_table() -> str:
    from learned.common import WEIGHTS_DIR

    lines = ["### Training runs", "", "| weights | data | iterations | batch | wall time | final loss | validation (WTA bad-2, held-out) | seed |",
             "|---|---|---|---|---|---|---|---|"]
    for js in sorted(WEIGHTS_DIR.glob("mccnn_*.json")):
        meta = json.loads(js.read_text())
        val = meta.get("validation", {}).get("bad2")
        hist = [f"{h['iteration']}: {h['val_bad2']:.1f}" for h in meta.get("history", []) if "val_bad2" in h]
        lines.append(f"| {js.with_suffix('.pt').name} | {', '.join(meta.get('data', []))} | {meta.get('iterations')} | "
                     f"{meta.get('batch_size')} | {meta.get('wall_time_s', 0) / 60:.0f} min | {meta.get('final_loss', 0):.4f} | "
                     f"{'' if val is None else f'{val:.2f} %'} ({'; '.join(hist)}) | {meta.get('seed')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_mccnn.md"))
    args = ap.parse_args(argv)
    mccnn = _mccnn_matchers()
    if not mccnn:
        print("no MC-CNN weights shipped in learned/weights; train them first (see README)")
        return 1
    parts = ["## MC-CNN benchmark", "", f"python benchmarks/bench_mccnn.py {' '.join(argv or sys.argv[1:])}".strip(), ""]
    record: dict = {}
    if not args.skip_accuracy:
        text, record["accuracy"] = accuracy(_entries(mccnn) + [(m, m, {}) for m in BASELINES])
        parts.append(text)
    if not args.skip_timing:
        text, record["timing"] = timing(_entries(mccnn), args.runs)
        parts.append(text)
    parts.append(training_table())
    report = "\n".join(parts)
    print(report)
    Path(args.out).write_text(report)
    Path(args.out).with_suffix(".json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
