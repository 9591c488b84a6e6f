"""Speed, memory and accuracy of the classical matchers against OpenCV's, in one run.

    python benchmarks/bench_classical.py [--runs 5] [--quick] [--only M1,M2] [--out benchmarks/results_classical.md]

Speed (per input: `sample` 741x500 with max_disp 64, and a KITTI-sized synthetic pair 1242x375 with max_disp 128):
each matcher runs in its own fresh subprocess, so the peak memory is its own and the JIT figures are honest:

- ``first call``: the first call in a fresh process (Numba: loads the on-disk cache, or compiles when the cache is
  cold; OpenCV: allocations);
- ``JIT compile``: the first call in a process with an *empty* Numba cache (NUMBA_CACHE_DIR pointed to a new
  temporary directory) minus the warm median: what a first-ever run pays once (0 for OpenCV);
- ``median``: the median wall time of `--runs` calls after one warm-up call;
- ``peak MB``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process minus its resident size just before
  the first call (after imports and loading the images). tracemalloc would miss OpenCV's C++ and Numba's
  allocations; the RSS high-water mark sees every allocator. Also given as a multiple of H*W*D*4 bytes (one
  float32 cost volume).

Ratios are taken within the same run: sgm / opencv-sgbm-hh (target <= 1.0), sgm / opencv-sgbm, bm-sad / opencv-bm
(target <= 2.0). Threads: Numba and OpenCV both use all cores (``numba.get_num_threads()``, ``cv2.getNumThreads()``
are printed); on a shared machine timings are noisy, the load average is printed beside them.

Accuracy: every matcher with its default options on `sample` and on the eleven shared Middlebury scenes
(``middlebury:<shared data>``; max_disp per scene = its GT maximum rounded up to a multiple of 16), scored by
`eval.metrics.evaluate_pair` (invalid pixels filled by KITTI background interpolation; bad-2.0 and D1-all over all
pixels with ground truth, density before filling); the table ends with the mean over the eleven scenes.

The Markdown tables are printed and written to `--out` (default benchmarks/results_classical.md).
`--only bm-sad,opencv-bm` measures a subset of matchers (ratios only when both sides are in it) and *merges* its
rows, ratio lines and accuracy columns into the existing `--out` file (the other matchers' figures are kept, and a
note records which rows were re-measured, when, and with which command).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OURS = ["bm-sad", "bm-ssd", "bm-ncc", "bm-census", "sgm"]
OPENCV = ["opencv-bm", "opencv-sgbm", "opencv-sgbm-hh", "opencv-sgbm-3way"]
MATCHERS = OURS + OPENCV
INPUTS = {"sample": ("sample 741x500", 64), "kitti-synthetic": ("synthetic 1242x375", 128)}


# ---------------------------------------------------------------------------------------------------------------
# Child process: one matcher on one input


def load_input(name: str):
    from stereokit.datasets import open_dataset

    if name == "sample":
        return open_dataset("sample")[0]
    from stereokit.datasets.synthetic import make_scene

    return make_scene(0, height=375, width=1242, max_disp=128)


def child(matcher: str, input_name: str, runs: int) -> None:
    import resource

    import psutil

    import stereokit

    loaded = load_input(input_name)
    left, right = loaded.left, loaded.right
    max_disp = INPUTS[input_name][1]
    stereokit.matchers[matcher]  # import the module: not part of the first call
    rss0 = psutil.Process().memory_info().rss

    cpu = []

    def call() -> float:
        # a fresh pair per call, as stereokit.match does: image conversions count for every matcher
        c0 = time.process_time()
        t0 = time.perf_counter()
        stereokit.run_matcher(stereokit.StereoPair(left, right), matcher, max_disp)
        t = time.perf_counter() - t0
        cpu.append(time.process_time() - c0)  # all threads of the process: on a loaded machine, less noisy than wall
        return t

    first = call()
    times = [call() for _ in range(runs)] or [first]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    pair = loaded
    print(json.dumps({"first": first, "median": float(np.median(times)), "min": float(np.min(times)),
                      "cpu": float(np.median(cpu[1:] or cpu)), "peak_bytes": peak - rss0,
                      "hwd": pair.height * pair.width * max_disp}))


def run_child(matcher: str, input_name: str, runs: int, cold_cache: bool) -> dict:
    env = dict(os.environ)
    tmp = None
    if cold_cache:
        tmp = tempfile.TemporaryDirectory(prefix="numba-cold-")
        env["NUMBA_CACHE_DIR"] = tmp.name
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", matcher, input_name, "--runs", str(runs)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{matcher} on {input_name} failed:\n{exc.stderr[-2000:]}") from exc
    finally:
        if tmp is not None:
            tmp.cleanup()
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# Parent: speed table, accuracy table


def fmt_ms(s: float) -> str:
    return f"{s * 1000:.0f}" if s >= 0.1 else f"{s * 1000:.1f}"


def speed_tables(runs: int, inputs: list[str], matchers: list[str] = MATCHERS) -> list[str]:
    import cv2
    import numba

    lines = []
    for name in inputs:
        label, max_disp = INPUTS[name]
        res = {}
        for m in matchers:
            warm = run_child(m, name, runs, cold_cache=False)
            if m in OURS:
                cold = run_child(m, name, 0, cold_cache=True)
                warm["jit"] = max(cold["first"] - warm["median"], 0.0)
            else:
                warm["jit"] = 0.0
            res[m] = warm
            print(f"  {name} {m}: median {fmt_ms(warm['median'])} ms", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        lines += [f"### Speed: {label}, max_disp {max_disp}", "",
                  f"Median of {runs} runs after a warm-up; Numba threads {numba.get_num_threads()}, OpenCV threads "
                  f"{cv2.getNumThreads()}, load average {load:.1f} on {os.cpu_count()} CPUs.", "",
                  "| matcher | median ms | min ms | first call ms | JIT compile s | peak MB | peak / (H*W*D*4) |",
                  "|---|---|---|---|---|---|---|"]
        for m in matchers:
            r = res[m]
            mb = r["peak_bytes"] / 2**20
            lines.append(f"| {m} | {fmt_ms(r['median'])} | {fmt_ms(r['min'])} | {fmt_ms(r['first'])} | "
                         f"{r['jit']:.1f} | {mb:.0f} | {r['peak_bytes'] / (4 * r['hwd']):.2f} |")
        lines.append("")
        if all(k in res for k in ("sgm", "opencv-sgbm-hh", "opencv-sgbm", "opencv-sgbm-3way")):
            sgm, hh, sg = (res[k]["median"] for k in ("sgm", "opencv-sgbm-hh", "opencv-sgbm"))
            lines.append(f"- sgm / opencv-sgbm-hh = **{sgm / hh:.2f}** (target <= 1.0); sgm / opencv-sgbm = "
                         f"{sgm / sg:.2f}; sgm / opencv-sgbm-3way = {sgm / res['opencv-sgbm-3way']['median']:.2f}")
        if "bm-sad" in res and "opencv-bm" in res:
            bm, obm = res["bm-sad"]["median"], res["opencv-bm"]["median"]
            lines.append(f"- bm-sad / opencv-bm = **{bm / obm:.2f}** (target <= 2.0); CPU time (user + system of the "
                         f"process, per call) {res['bm-sad']['cpu'] * 1000:.0f} / {res['opencv-bm']['cpu'] * 1000:.0f}"
                         f" ms = {res['bm-sad']['cpu'] / res['opencv-bm']['cpu']:.2f}")
        lines.append("")
    return lines


def shared_scenes():
    env = os.environ.get("STEREOKIT_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    if not path.is_dir():
        return None
    from stereokit.datasets import open_dataset

    return open_dataset(f"middlebury:{path}")


def scene_max_disp(pair) -> int:
    from stereokit.validation import max_disp_from_gt

    md = pair.meta.get("max_disp") if pair.meta else None
    if md:
        return int(md)
    return max_disp_from_gt(float(np.nanmax(pair.gt)), pair.width)


def accuracy_table(quick: bool, matchers: list[str] = MATCHERS) -> list[str]:
    import stereokit
    from eval.metrics import evaluate_pair
    from stereokit.datasets import open_dataset

    pairs = [("sample", open_dataset("sample")[0], 64)]
    ds = None if quick else shared_scenes()
    names = []
    if ds is not None:
        for i, pair in enumerate(ds):
            names.append(ds.names[i])
            pairs.append((ds.names[i], pair, scene_max_disp(pair)))
    scores = {m: {} for m in matchers}
    for label, pair, md in pairs:
        for m in matchers:
            disp = stereokit.run_matcher(pair, m, md)
            r = evaluate_pair(disp, pair.gt).all
            scores[m][label] = (r["bad-2.0"], r["D1-all"], r["density"])
        print(f"  accuracy {label} done", file=sys.stderr, flush=True)
    lines = ["### Accuracy (bad-2.0 % / D1-all % / density %, KITTI-filled, all pixels with GT)", "",
             "| scene (max_disp) | " + " | ".join(matchers) + " |", "|---" * (len(matchers) + 1) + "|"]
    for label, _, md in pairs:
        cells = [f"{scores[m][label][0]:.2f} / {scores[m][label][1]:.2f} / {scores[m][label][2]:.0f}" for m in matchers]
        lines.append(f"| {label} ({md}) | " + " | ".join(cells) + " |")
    if names:
        means = {m: [float(np.mean([scores[m][n][j] for n in names])) for j in range(3)] for m in matchers}
        cells = [f"**{means[m][0]:.2f}** / {means[m][1]:.2f} / {means[m][2]:.0f}" for m in matchers]
        lines.append(f"| mean of {len(names)} Middlebury | " + " | ".join(cells) + " |")
        sgbm = ("opencv-sgbm", "opencv-sgbm-hh", "opencv-sgbm-3way")
        if "sgm" in means and all(m in means for m in sgbm):
            best_cv = min(sgbm, key=lambda m: means[m][0])
            gain = 100 * (1 - means["sgm"][0] / means[best_cv][0])
            lines += ["", f"- sgm mean bad-2.0 {means['sgm'][0]:.2f} % vs best OpenCV SGBM mode ({best_cv}) "
                      f"{means[best_cv][0]:.2f} %: **{gain:.0f} % fewer bad pixels** (target >= 0, aim 20 %)"]
    return lines + [""]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def merge_into(old: list[str], new: list[str], note: str) -> list[str]:
    """`old` results with the rows, ratio lines and accuracy columns that `new` (an --only run) measured replaced."""
    out = list(old)

    def sections(lines):
        found, current = {}, None
        for i, line in enumerate(lines):
            if line.startswith("### "):
                current = line
                found[current] = []
            elif current is not None:
                found[current].append(i)
        return found

    old_sec, new_sec = sections(out), sections(new)
    for title, new_idx in new_sec.items():
        if title not in old_sec:
            continue
        old_idx = old_sec[title]
        new_table = [new[i] for i in new_idx if new[i].startswith("|")]
        if title.startswith("### Speed"):
            for row in new_table[2:]:
                name = _cells(row)[0]
                for i in old_idx:
                    if out[i].startswith("|") and _cells(out[i])[0] == name:
                        out[i] = row
            for line in (new[i] for i in new_idx if new[i].startswith("- ")):
                key = line.split("=")[0]
                for i in old_idx:
                    if out[i].startswith(key):
                        out[i] = line
        else:  # accuracy: replace the measured matchers' columns, row by row (matched on the scene label)
            new_head = _cells(new_table[0])
            old_tab = [i for i in old_idx if out[i].startswith("|")]
            old_head = _cells(out[old_tab[0]])
            new_rows = {_cells(r)[0]: _cells(r) for r in new_table[2:]}
            for i in old_tab[2:]:
                cells = _cells(out[i])
                if cells[0] in new_rows:
                    for j, m in enumerate(new_head[1:], 1):
                        if m in old_head:
                            cells[old_head.index(m)] = new_rows[cells[0]][j]
                    out[i] = "| " + " | ".join(cells) + " |"
    for i, line in enumerate(out):
        if line.startswith("Command: "):
            out.insert(i + 1, "")
            out.insert(i + 2, note)
            break
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="sample only, no shared scenes, no synthetic speed")
    ap.add_argument("--only", help="comma-separated matchers to measure (default: all); their rows are merged "
                    "into the existing --out file")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_classical.md"))
    ap.add_argument("--child", nargs=2, metavar=("MATCHER", "INPUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.runs)
        return
    matchers = MATCHERS
    if args.only:
        matchers = [m.strip() for m in args.only.split(",") if m.strip()]
        unknown = [m for m in matchers if m not in MATCHERS]
        if unknown:
            ap.error(f"unknown matcher(s) {', '.join(unknown)}; choose from {', '.join(MATCHERS)}")
    flags = " ".join(a for a in (["--quick"] if args.quick else []) + (["--no-speed"] if args.no_speed else [])
                     + (["--no-accuracy"] if args.no_accuracy else []) + [f"--runs {args.runs}"] * (args.runs != 5)
                     + [f"--only {','.join(matchers)}"] * bool(args.only))
    stamp = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    command = f"python benchmarks/bench_classical.py{' ' + flags if flags else ''}"
    lines = ["## Classical matchers vs OpenCV", "", f"Command: `{command}` ({stamp}).", ""]
    if not args.no_speed:
        lines += speed_tables(args.runs, ["sample"] if args.quick else list(INPUTS), matchers)
    if not args.no_accuracy:
        lines += accuracy_table(args.quick, matchers)
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    if args.only and out.exists():
        runs = "; ".join(f"{t[4:].split(',')[0]}: {m.split(';')[0].lower()}, load average "
                         f"{m.split('load average ')[1].split(' ')[0]}" for t, m in zip(
                             [x for x in lines if x.startswith("### Speed")], [x for x in lines if x.startswith("Median of")]))
        note = (f"Rows of {', '.join(matchers)} re-measured by `{command}` ({stamp}"
                f"{'; ' + runs if runs else ''}); the others are from the run above.")
        text = "\n".join(merge_into(out.read_text().splitlines(), lines, note))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
