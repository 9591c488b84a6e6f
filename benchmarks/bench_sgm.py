"""Speed and memory of `stereokit.sgm.sgm` against OpenCV's StereoSGBM (MODE_HH, 8 paths), in one run.

    python benchmarks/bench_sgm.py [--runs 7] [--quick]

Cases: the `sample` size (741x500, 64 disparities) and a KITTI size (1242x375, 128 disparities).
- OpenCV: `StereoSGBM_create(mode=MODE_HH)` with its documented settings (block 5, P1 = 8*3*25, P2 = 32*3*25) on
  the real `sample` pair and on a synthetic 1242x375 colour pair: the *whole* OpenCV matcher (its cost, 8-path SGM,
  uniqueness, LR check, median, speckles), i.e. an upper bound of its SGM alone.
- ours: `sgm()` alone, 8 paths, on a cost volume of the same H x W x D: integer costs as census 9x7 gives (int16
  kernel), with and without the guide-adaptive P2, and a float volume (float32 kernel).
Timings: median wall time of `--runs` calls after a warm-up, the calls of all cases interleaved so that a load
change on this shared machine hits every case alike; the ratio ours / OpenCV is taken within the run. The CPU time
(all threads) is given beside: on a loaded 2-core machine it is the fairer figure for a 2-thread kernel against a
1-thread one. JIT: compile time with an empty Numba cache, and the first call of a fresh process with the cache
warm (both measured in subprocesses). Peak memory: tracemalloc's peak during one call (every NumPy allocation;
Numba's internal row buffers are not traced, O(paths * W * D)), as a multiple of H*W*D float32.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"sample 741x500 D=64": (500, 741, 64), "kitti 1242x375 D=128": (375, 1242, 128)}


def _images(name: str, shape) -> tuple[np.ndarray, np.ndarray]:
    if name.startswith("sample"):
        from skimage import data

        left, right, _ = data.stereo_motorcycle()
        return left, right
    from stereokit.datasets.synthetic import make_scene

    H, W, D = shape
    pair = make_scene(0, height=H, width=W, max_disp=D - 8)
    to8 = lambda a: np.clip(np.asarray(a, np.float64) * (255.0 if np.asarray(a).dtype.kind == "f" else 1.0), 0, 255)
    left, right = (to8(a).astype(np.uint8) for a in (pair.left, pair.right))
    if left.ndim == 2:
        left, right = np.dstack([left] * 3), np.dstack([right] * 3)
    return left, right


def _census_like(shape, seed=0) -> np.ndarray:
    H, W, D = shape
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 63, size=shape).astype(np.float32)
    x = np.arange(W)[None, :, None]
    vol[np.broadcast_to(x - np.arange(D)[None, None, :] < 0, shape)] = np.inf
    return vol


def _jit_times() -> tuple[float, float]:
    code = (
        "import time, numpy as np; t=time.perf_counter(); from stereokit.sgm import sgm; "
        "v=np.random.default_rng(0).integers(0,9,(12,16,8)).astype(np.float32); g=np.zeros((12,16),np.float32); "
        "sgm(v,1,4); sgm(v,1,4,guide=g); sgm(v+0.5,1,4); print(time.perf_counter()-t)"
    )
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True, cwd=ROOT).stdout.split()[-1])
        warm = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True, cwd=ROOT).stdout.split()[-1])
    return cold, warm


def _peak(fn, nbytes: int) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / nbytes


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="sample size only, 3 runs, no JIT subprocesses")
    args = ap.parse_args(argv)
    import cv2
    import numba

    from stereokit.sgm import sgm

    runs = 3 if args.quick else args.runs
    sgm(np.zeros((4, 5, 3), np.float32), 1, 2)  # loads the kernels (and the threading layer)
    print(f"numba threads {numba.get_num_threads()} (layer {numba.threading_layer()}), "
          f"cv2 threads {cv2.getNumThreads()}, load average {os.getloadavg()}")
    if not args.quick:
        cold, warm = _jit_times()
        print(f"JIT: first calls with an empty Numba cache {cold:.1f} s (compile), with the cache warm {warm:.2f} s")
    rows = []
    for name, shape in list(SIZES.items())[: 1 if args.quick else None]:
        H, W, D = shape
        left, right = _images(name, shape)
        cv = cv2.StereoSGBM_create(0, D, 5, P1=8 * 3 * 25, P2=32 * 3 * 25, mode=cv2.STEREO_SGBM_MODE_HH)
        ivol = _census_like(shape)
        fvol = np.where(np.isinf(ivol), ivol, ivol * np.float32(1 / 63)).astype(np.float32)
        guide = np.asarray(left, np.float32).mean(axis=2) / 255.0
        cases = {
            "opencv MODE_HH (whole matcher)": lambda: cv.compute(left, right),
            "sgm int costs": lambda: sgm(ivol, 8, 120, 8),
            "sgm int costs + adaptive P2": lambda: sgm(ivol, 8, 120, 8, guide=guide),
            "sgm float costs": lambda: sgm(fvol, 0.1, 1.9, 8),
        }
        for fn in cases.values():  # warm-up (JIT from cache, first-touch allocations)
            fn()
        wall = {k: [] for k in cases}
        cpu = {k: [] for k in cases}
        for _ in range(runs):
            for k, fn in cases.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
        ref_w = statistics.median(wall["opencv MODE_HH (whole matcher)"])
        ref_c = statistics.median(cpu["opencv MODE_HH (whole matcher)"])
        nbytes = H * W * D * 4
        for k, fn in cases.items():
            w, c = statistics.median(wall[k]), statistics.median(cpu[k])
            peak = _peak(fn, nbytes) if k.startswith("sgm") else float("nan")
            rows.append((name, k, w, w / ref_w, c, c / ref_c, peak))
    print()
    print("| input | method | median wall s | / opencv HH | median CPU s | / opencv HH | peak (x H*W*D*4 B) |")
    print("|---|---|---|---|---|---|---|")
    for name, k, w, rw, c, rc, peak in rows:
        pk = "-" if np.isnan(peak) else f"{peak:.2f}"
        print(f"| {name} | {k} | {w:.3f} | {rw:.2f} | {c:.3f} | {rc:.2f} | {pk} |")
    print(f"\n(load average after: {os.getloadavg()})")


if __name__ == "__main__":
    main()
