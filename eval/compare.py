"""`stereokit compare`: run matchers on datasets, score them with the one evaluator, cache and report.

Layout of the output folder DIR:

- `pred/<method>/<dataset>/<pair>.pfm`: each prediction (PFM, inf invalid), written atomically, with a sidecar
  `<pair>.json` (format `SIDECAR_FORMAT`) holding its timing and what it was computed from. Each
  `pred/<method>/<dataset>` folder is what `stereokit eval --dataset SPEC --pred FOLDER` reads; `<dataset>` of a path
  spec ends in a hash of the folder's absolute path. A rerun reuses a prediction only if its sidecar matches the
  computation asked for: the dataset (`dataset_identity`: a path spec's resolved folder), the pair's input images
  (`input_fingerprint`), the matcher's origin (entry point or built-in, its distribution's version and a hash of its
  package's and stereokit's sources; for a function registered in-process its module:qualname and a hash of its code)
  and fingerprint (a learned matcher's weights file hash), max_disp, seed and the normalised params
  (`normalise_params`), and the PFM's digest. So an interrupted run restarts where it stopped, and a prediction is
  never scored for a computation it did not come from; a sidecar of another format is stale. A new prediction replaces
  the old one sidecar first (old sidecar removed, PFM written, new sidecar written last). `force=True` recomputes.
  Failures are not cached: a rerun retries them (e.g. after a learned matcher's weights arrive).
- `pred/<method>/warmup.json`: the method's last warm-up time.
- `ref/<dataset>/<pair>/`: what the report draws (left image, ground truth, masks) for the first pairs of each
  dataset, so `stereokit report DIR` can rebuild everything without the dataset.
- `results.json`, `results.csv`, `index.html` (see `eval.report`).

Timing: each (pair, method) run is timed with `time.perf_counter` around `stereokit.run_matcher` after one warm-up
call of that method per worker process on a small crop (JIT compilation, model loading); the warm-up time is
reported separately. `cpu_seconds` is the process CPU time over the same call (all threads).
Memory: `peak_mb` is the growth of the worker process's peak resident set size (Linux VmHWM, reset through
/proc/self/clear_refs just before the call) over its resident size at the start of the call: real memory the call
made the process touch, whatever allocated it (NumPy, Numba, PyTorch, OpenCV). Free memory the allocator kept from
earlier calls is handed back first (glibc malloc_trim) so it is not silently reused; memory that stays allocated
between calls (a model's weights, caches) is not counted again. With a threaded executor concurrent calls share one
process, so the figure is exact only with one task per process (the default and `--jobs`). Where VmHWM cannot be reset it
falls back to tracemalloc's peak (Python and NumPy allocations only) and says so in the settings.

Executors: in-process (jobs=1), `concurrent.futures.ProcessPoolExecutor` (jobs>1), or a Dask
`distributed.Client(address).get_executor()` (scheduler=ADDRESS): one code path, tasks of one (pair, method) that
load the pair on the worker and return the prediction array and its scores to the client, which writes the files.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from stereokit.api import check_param_names
from stereokit.errors import StereoKitError
from stereokit.validation import max_disp_from_gt

from .metrics import METRIC_KEYS, HIST_EDGES, PairResult, evaluate_dataset, evaluate_pair, save_json

DEFAULT_DATASETS = ("sample", "synthetic:3")
DEFAULT_OUT = "stereokit-report"
DEFAULT_SEED = 0
GALLERY_PAIRS = 6  # pairs per dataset whose images the report shows
RESULTS_FORMAT = 1
# The sidecar beside each cached prediction; sidecars of another format are stale (recomputed). 2: dataset identity,
# input fingerprint, matcher origin, prediction digest and normalised params recorded and compared.
SIDECAR_FORMAT = 2
# Cumulative error distribution stored in results.json: the evaluator's histogram edges, 8 per octave, 1/16..256 px.
CED_THRESHOLDS = [float(t) for t in HIST_EDGES[1:-1] if 2.0**-4 <= t <= 2.0**8][::16]

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


# ----------------------------------------------------------------------------------------------------------------
# settings and file layout


def _path_spec(spec: str) -> tuple[str, str, str] | None:
    """(kind, absolute resolved folder, Scene Flow split or '') of a path spec ('middlebury:PATH'), else None."""
    from stereokit.datasets import SPECS

    kind, _, rest = str(spec).strip().partition(":")
    k = kind.lower()
    if k not in SPECS or SPECS[k][2] is None or not rest.strip():
        return None
    path, split = rest, ""
    if k == "sceneflow":
        from stereokit.datasets.sceneflow import split_spec

        path, found = split_spec(rest)
        split = found.lower() if found else ""
    return k, os.path.realpath(os.path.expanduser(path)), split


def dataset_identity(spec: str) -> str:
    """What a dataset spec names, for the prediction cache: a path spec with its folder made absolute and resolved
    ('middlebury:../data' -> 'middlebury:/home/me/data'; Scene Flow's ':train' / ':test' kept); other specs as
    given. Two folders with one base name are told apart; one folder named two ways is the same dataset."""
    parsed = _path_spec(spec)
    if parsed is None:
        return str(spec).strip()
    kind, path, split = parsed
    return f"{kind}:{path}" + (f":{split}" if split else "")


def dataset_key(spec: str, taken: set[str] | None = None) -> str:
    """A short filesystem-safe folder name for a dataset spec ('synthetic:3' -> 'synthetic-3',
    'middlebury:/data/mb2014' -> 'middlebury-mb2014-1a2b3c4d', the suffix a hash of the folder's absolute path, so
    two folders with one base name get two keys), unique among `taken`."""
    kind, _, rest = str(spec).strip().partition(":")
    tag = ""
    parsed = _path_spec(spec)
    if parsed is not None:
        _, path, split = parsed
        rest = (Path(path).name or "root") + (f"-{split}" if split else "")
        tag = "-" + hashlib.sha256(dataset_identity(spec).encode("utf-8")).hexdigest()[:8]
    key = _SLUG.sub("-", f"{kind}-{rest}" if rest else kind).strip(".-_") or "dataset"
    key = key[: 60 - len(tag)].rstrip(".-_") + tag
    if taken is not None:
        base, k = key, 2
        while key in taken:
            key, k = f"{base}-{k}", k + 1
        taken.add(key)
    return key


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, dists in {
        "stereokit": ("stereokit",),
        "numpy": ("numpy",),
        "scipy": ("scipy",),
        "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
        "numba": ("numba",),
        "torch": ("torch",),
        "scikit-image": ("scikit-image",),
        "matplotlib": ("matplotlib",),
        "dask": ("dask",),
        "distributed": ("distributed",),
    }.items():
        out[key] = None
        for dist in dists:
            try:
                out[key] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return out


def _machine() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                    break
    except OSError:
        pass
    return info


def _write_text_atomic(path: Path, text: str) -> None:
    """`text` as UTF-8, written atomically (`stereokit.io.atomic_write_bytes`)."""
    from stereokit.io import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))


def safe_token(name: str) -> str:
    """A matcher or pair name as a file or folder name (registry names are free text)."""
    return _SLUG.sub("_", str(name)).strip("._") or "_"


def pred_path(out: Path, method: str, dskey: str, pair: str) -> Path:
    """DIR/pred/<method>/<dataset>/<pair>.pfm."""
    return Path(out) / "pred" / safe_token(method) / dskey / f"{safe_token(pair)}.pfm"


def ref_dir(out: Path, dskey: str, pair: str) -> Path:
    """DIR/ref/<dataset>/<pair>/: left.png, gt.pfm, nonocc.png, fg.png for the report."""
    return Path(out) / "ref" / dskey / safe_token(pair)


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, RecursionError):
        return None


# `stereokit compare` chooses its matchers with --methods / methods=, not --method.
_COMPARE_OPTIONS = {"method": ("--methods", "methods=")}


def normalise_params(params: dict | None, method: str = "") -> dict:
    """Matcher parameters in the one form that is passed to the matcher, stored in the sidecar and compared with
    it: paths as strings, NumPy scalars as Python numbers, tuples as lists, nested dicts with string keys.
    Anything else (arrays, objects, NaN or infinite floats) raises StereoKitError naming the parameter: it could not
    be recorded faithfully, so a cached prediction could be reused for another value."""

    def norm(v, where: str):
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v[()]
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                raise StereoKitError(f"parameter {where} is {v}: a cached prediction cannot record it; use a finite "
                                     f"number")
            return float(v)
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
            if isinstance(v, str):
                return v
        if isinstance(v, (list, tuple)):
            return [norm(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise StereoKitError(f"parameter {where} has a key {k!r} that is not a string")
                out[k] = norm(x, f"{where}.{k}")
            return out
        raise StereoKitError(
            f"parameter {where} is a {type(v).__name__}, which a cached prediction cannot record; use a number, "
            f"string, boolean, None, path, or a list or dict of these"
        )

    if params is None:
        return {}
    if not isinstance(params, dict):
        raise StereoKitError(f"parameters of {method or 'a matcher'} must be a dict, got {type(params).__name__}")
    prefix = f"{method}." if method else ""
    out = {}
    for k, v in params.items():
        if not isinstance(k, str) or not k:
            raise StereoKitError(f"parameter name {k!r} of {method or 'a matcher'} is not a non-empty string")
        check_param_names({k: v}, f"parameter {prefix}{{name}}", instead=_COMPARE_OPTIONS)
        out[k] = norm(v, f"{prefix}{k}")
    return out


def input_fingerprint(pair) -> str:
    """A fast hash of what a matcher sees of a pair: the left and right image arrays (dtype, shape, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for img in (pair.left, pair.right):
        a = np.ascontiguousarray(img)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return "blake2b:" + h.hexdigest()


def _digest(data: bytes) -> str:
    return "blake2b:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return _digest(f.read())


# ----------------------------------------------------------------------------------------------------------------
# the worker side: one (pair, method) task


@dataclass(frozen=True)
class Task:
    """One matcher run: everything a worker needs, picklable."""

    spec: str
    dskey: str
    index: int
    pair: str
    method: str
    max_disp: int
    params: dict = field(default_factory=dict)
    seed: int = DEFAULT_SEED
    fingerprint: str | None = None  # matchers.fingerprint(method, params): e.g. the weights file's hash
    dataset: str | None = None  # dataset_identity(spec): the resolved folder of a path spec
    matcher: str | None = None  # matchers.origin(method): entry point, version, sources; or function and code
    target: str | None = None  # 'module:qualname' of a matcher registered in-process, for other processes


def _release_free_memory() -> None:
    """Hand memory freed by earlier runs back to the OS (glibc malloc_trim), so the next run's resident growth is
    its own: otherwise a matcher reusing pages an earlier one freed would show ~0 MB."""
    import gc

    gc.collect()
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


class _PeakMemory:
    """Peak resident-memory growth (MB) of this process over a block; see the module docstring."""

    method = "vmhwm"

    def __enter__(self) -> _PeakMemory:
        self.mb = 0.0
        self._tracemalloc = False
        _release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self._base = self._status("VmRSS")
        except OSError:
            import tracemalloc

            self._tracemalloc = not tracemalloc.is_tracing()
            if self._tracemalloc:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._base = tracemalloc.get_traced_memory()[0] / 1024.0
            _PeakMemory.method = "tracemalloc"
        return self

    @staticmethod
    def _status(key: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])  # kB
        raise OSError(f"{key} not in /proc/self/status")

    def __exit__(self, *exc) -> None:
        if _PeakMemory.method == "tracemalloc":
            import tracemalloc

            peak = tracemalloc.get_traced_memory()[1] / 1024.0
            if self._tracemalloc:
                tracemalloc.stop()
        else:
            peak = self._status("VmHWM")
        self.mb = max(0.0, peak - self._base) / 1024.0


# Per worker process: opened datasets, the last pair loaded, and the methods already warmed up.
_STATE_LOCK = threading.Lock()
_DATASETS: dict[str, object] = {}
_WARM: dict[tuple[str, int, str], dict] = {}  # key -> {"done": Event, "info": {...}}
_PAIR_CACHE: dict[tuple[str, int], object] = {}


def _load_pair(spec: str, index: int):
    from stereokit.datasets import open_dataset

    with _STATE_LOCK:
        cached = _PAIR_CACHE.get((spec, index))
        if cached is not None:
            return cached
        ds = _DATASETS.get(spec)
        if ds is None:
            ds = _DATASETS[spec] = open_dataset(spec)
    pair = ds[index]
    with _STATE_LOCK:
        if len(_PAIR_CACHE) >= 2:
            _PAIR_CACHE.pop(next(iter(_PAIR_CACHE)))
        _PAIR_CACHE[(spec, index)] = pair
    return pair


def _crop_for_warmup(pair, max_disp: int):
    from stereokit.pair import StereoPair

    # small: the warm-up is for JIT compilation and model loading, and a slow matcher pays for its size
    h = min(pair.height, 32)
    w = min(pair.width, max_disp + 32)
    return StereoPair(pair.left[:h, :w], pair.right[:h, :w], name=f"{pair.name}-warmup")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")  # only if a matcher already imported it
    if torch is not None:
        torch.manual_seed(seed)


def _warm_up(pair, task: Task) -> dict:
    """Run the method once on a crop, once per process and (method, max_disp, params). Returns the warm-up's
    {"seconds", "crop", "error"?}, also for later tasks of the same process (the warm-up they did not need)."""
    key = (task.method, task.max_disp, json.dumps(task.params, sort_keys=True, default=str))
    with _STATE_LOCK:
        entry = _WARM.get(key)
        first = entry is None
        if first:
            entry = _WARM[key] = {"done": threading.Event(), "info": {}}
    if not first:  # another thread of this process warms up (threaded Dask workers): wait, so timings stay clean
        entry["done"].wait()
        return entry["info"]
    from stereokit.api import run_matcher

    info: dict = {}
    try:
        crop = _crop_for_warmup(pair, task.max_disp)
        info["crop"] = list(crop.shape)
        t0 = time.perf_counter()
        try:
            _seed_everything(task.seed)
            run_matcher(crop, task.method, task.max_disp, **task.params)
        except Exception as exc:  # the real run reports the failure; a warm-up failure is only noted
            info["error"] = f"{type(exc).__name__}: {exc}"
        info["seconds"] = time.perf_counter() - t0
    finally:
        entry["info"] = info
        entry["done"].set()
    return info


def score_prediction(pair, pred: np.ndarray) -> PairResult:
    """The evaluator's scores of `pred` on `pair` (KITTI background fill, as everywhere in StereoKit)."""
    return evaluate_pair(pred, pair.gt, nonocc=pair.nonocc, fg=pair.fg, fill=True)


def _import_target(target: str):
    """The object named by 'module:qualname' (a spawned worker's main script answers to '__main__')."""
    import importlib

    module_name, _, qual = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_method(name: str) -> None:
    """Make `name` runnable in this process: a registered matcher, or 'module:function' (imported and registered
    here, so worker processes and Dask workers find it too). Raises StereoKitError if it is neither."""
    from stereokit.registry import matchers

    if name in matchers:
        return
    module_name, sep, attr = name.partition(":")
    if sep and module_name and attr:
        try:
            func = _import_target(name)
        except Exception as exc:
            raise StereoKitError(f"matcher {name!r}: cannot import {attr} from {module_name}: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if not callable(func):
            raise StereoKitError(f"matcher {name!r} is not callable")
        matchers.register(name, func)
        return
    raise StereoKitError(f"unknown matcher {name!r}; available: {', '.join(matchers)} (or MODULE:FUNCTION)")


def _runtime_target(name: str) -> str | None:
    """'module:qualname' by which other processes find matcher `name` if it was registered in-process; None for
    built-ins, entry points and 'MODULE:FUNCTION' names (which every process imports by the name itself)."""
    from stereokit.registry import matchers

    target = matchers.runtime_target(name)
    if target is not None and ":" in name:
        try:
            if _import_target(name) is matchers.raw(name):
                return None
        except Exception:
            pass
    return target


def _not_portable(name: str) -> str | None:
    """Why matcher `name`, registered in-process, cannot be handed to a spawned worker process by its
    'module:qualname' (None if it can, or if it is a built-in or entry point)."""
    from stereokit.registry import matchers

    target = _runtime_target(name)
    if target is None:
        return None
    module_name, _, qual = target.partition(":")
    if "<lambda>" in qual or "<locals>" in qual:
        return f"{target} is a lambda or a function defined inside another one"
    if module_name == "__main__":
        main = sys.modules.get("__main__")
        if getattr(main, "__file__", None) is None and getattr(main, "__spec__", None) is None:
            return f"{target} is defined in an interactive session, which worker processes cannot import"
    try:
        obj = _import_target(target)
    except Exception as exc:
        return f"{target} cannot be imported ({type(exc).__name__}: {exc})"
    if obj is not matchers.raw(name):
        return f"importing {target} gives another object than the registered one"
    return None


def _ensure_matcher(task: Task) -> None:
    """Make the task's matcher runnable in this process, the very one the run was set up with: a matcher registered
    in-process by the client is imported by its 'module:qualname' (replacing a built-in of the same name here, as
    it did there), and the matcher's origin here must equal the client's, else StereoKitError."""
    from stereokit.registry import matchers

    if task.target is not None and matchers.runtime_target(task.method) != task.target:
        try:
            func = _import_target(task.target)
        except Exception as exc:
            raise StereoKitError(
                f"matcher {task.method!r} was registered in-process as {task.target}, which this worker cannot "
                f"import ({type(exc).__name__}: {exc}); declare it as an entry point in the 'stereokit.matchers' "
                f"group or run in-process (--jobs 1)"
            ) from exc
        matchers.register(task.method, func, replace=True)
    else:
        resolve_method(task.method)
    if task.matcher is not None:
        here = matchers.origin(task.method)
        if here != task.matcher:
            raise StereoKitError(
                f"matcher {task.method!r} is {here} in this worker but {task.matcher} where the run was started; "
                f"install the same version (and code) everywhere"
            )


def _fingerprint(name: str, params: dict) -> str | None:
    """The registry's fingerprint of a matcher (None if it has none, or cannot load: that run then fails alone)."""
    from stereokit.registry import matchers

    try:
        return matchers.fingerprint(name, params)
    except Exception:
        return None


def run_task(task: Task) -> dict:
    """Run one matcher on one pair (loaded here, on the worker) and score it. Never raises for a matcher failure:
    returns {"ok": False, "error": message, "traceback": ...} instead."""
    from stereokit.api import run_matcher

    out: dict = {"task": task, "ok": False, "warmup": None}
    try:
        _ensure_matcher(task)
    except Exception as exc:
        out.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(), stage="load")
        return out
    try:
        pair = _load_pair(task.spec, task.index)
        inputs = input_fingerprint(pair)
    except Exception as exc:
        out.update(error=f"loading pair failed: {type(exc).__name__}: {exc}", traceback=traceback.format_exc(), stage="load")
        return out
    try:
        out["warmup"] = _warm_up(pair, task)
        _seed_everything(task.seed)
        cpu0 = time.process_time()
        with _PeakMemory() as mem:
            t0 = time.perf_counter()
            pred = run_matcher(pair, task.method, task.max_disp, **task.params)
            seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    except Exception as exc:
        out.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(), stage="run")
        return out
    try:
        result = score_prediction(pair, pred) if pair.gt is not None else None
    except Exception as exc:
        out.update(error=f"scoring failed: {type(exc).__name__}: {exc}", traceback=traceback.format_exc(), stage="score")
        return out
    out.update(
        ok=True,
        pred=np.asarray(pred, dtype=np.float32),
        result=result,
        inputs=inputs,
        timing={"seconds": seconds, "cpu_seconds": cpu, "peak_mb": mem.mb, "memory_method": _PeakMemory.method},
    )
    return out


# ----------------------------------------------------------------------------------------------------------------
# executors


class InlineExecutor(cf.Executor):
    """Runs each task in the calling process when submitted (jobs=1): the same interface as the pools."""

    def submit(self, fn, /, *args, **kwargs):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
            if isinstance(exc, KeyboardInterrupt):
                raise
        return future


def _init_worker(threads: int) -> None:
    """Process-pool initializer: share the cores between the workers; end a worker whose parent is gone."""
    _limit_threads(threads)
    _exit_with_parent()


def _limit_threads(n: int) -> None:
    """Share the cores between the worker processes instead of oversubscribing."""
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """Exit this process once its parent is gone: a pool worker whose parent was killed (SIGKILL, the OOM killer)
    would otherwise block on the pool's queues for ever."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="stereokit-parent-watch", daemon=True).start()


def make_executor(jobs: int = 1, scheduler: str | None = None) -> tuple[cf.Executor, str, object | None]:
    """(executor, description, client-or-None) for the requested parallelism."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
            raise StereoKitError("--scheduler needs dask[distributed] installed") from exc
        try:
            client = Client(scheduler, timeout="20s")
        except Exception as exc:
            raise StereoKitError(f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}") from exc
        return client.get_executor(pure=False), f"dask.distributed ({scheduler})", client
    if jobs and jobs > 1:
        pool = _process_pool(jobs)
        return pool, f"{jobs} processes ({max(1, (os.cpu_count() or 1) // jobs)} thread(s) each)", None
    return InlineExecutor(), "in-process", None


def _process_pool(jobs: int) -> cf.ProcessPoolExecutor:
    """`jobs` spawned worker processes sharing the cores."""
    return cf.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),  # fork + Numba/torch threads can deadlock
        initializer=_init_worker,
        initargs=(max(1, (os.cpu_count() or 1) // jobs),),
    )


# ----------------------------------------------------------------------------------------------------------------
# progress


class _Progress:
    """tqdm bar on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, enabled: bool | None, stream=None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None
        if (enabled is None and tty) or enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", file=self.stream, dynamic_ncols=True, desc="compare")

    def log(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def step(self, label: str, text: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update(1)
        else:
            width = len(str(self.total))
            print(f"[{self.done:>{width}}/{self.total}] {label}: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fmt_pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}%"


# ----------------------------------------------------------------------------------------------------------------
# the runner


@dataclass
class _DatasetInfo:
    spec: str
    key: str
    name: str
    names: list[str]
    max_disp: int
    max_disp_source: str
    max_gt: float | None = None
    width: int | None = None


def _save_reference(out: Path, dskey: str, pair) -> None:
    """The left image and ground truth the report draws, so `stereokit report DIR` needs no dataset."""
    from stereokit.io import write_disparity

    from .colormap import gray_image, write_png

    folder = ref_dir(out, dskey, pair.name)
    left = pair.left
    if left.dtype != np.uint8:
        left = gray_image(left) if left.ndim == 2 else np.stack([gray_image(left[..., c]) for c in range(3)], axis=2)
    write_png(folder / "left.png", left)
    if pair.gt is not None:
        write_disparity(folder / "gt.pfm", pair.gt)
    if pair.nonocc is not None:
        write_png(folder / "nonocc.png", pair.nonocc.astype(np.uint8) * 255)
    if pair.fg is not None:
        write_png(folder / "fg.png", pair.fg.astype(np.uint8) * 255)


def _open_datasets(specs, max_disp: int | None, out: Path, gallery: int, progress_log) -> tuple[list[_DatasetInfo], dict]:
    """Open each dataset; find max_disp from its ground truth unless given; save the gallery pairs' references."""
    from stereokit.datasets import open_dataset

    infos, opened, taken = [], {}, set()
    for spec in specs:
        ds = open_dataset(spec)
        key = dataset_key(spec, taken)
        max_gt, width = -math.inf, None
        need_scan = max_disp is None
        for i in range(len(ds)):
            if not need_scan and i >= gallery:
                break
            pair = ds[i]
            width = pair.width if width is None else min(width, pair.width)
            if pair.gt is not None and need_scan:
                finite = pair.gt[np.isfinite(pair.gt)]
                if finite.size:
                    max_gt = max(max_gt, float(finite.max()))
            if i < gallery:
                _save_reference(out, key, pair)
        if max_disp is not None:
            md, source = int(max_disp), "--max-disp"
        elif math.isfinite(max_gt):
            md, source = max_disp_from_gt(max_gt, width or 1 << 30), "ground truth"
        else:
            md, source = 64, "default (no ground truth)"
            progress_log(f"{spec}: no ground truth to size the disparity range; using max_disp 64")
        infos.append(
            _DatasetInfo(spec, key, str(getattr(ds, "name", spec)), list(ds.names), md, source,
                         max_gt if math.isfinite(max_gt) else None, width)
        )
        opened[spec] = ds
    return infos, opened


def _canonical(obj) -> str:
    """JSON text for comparing stored values exactly (1, 1.0 and true differ, which == does not see)."""
    return json.dumps(obj, sort_keys=True, allow_nan=False, default=repr)


def _sidecar_matches(side: dict | None, task: Task) -> bool:
    """Whether a sidecar describes the computation `task` asks for: same sidecar format, matcher (name, origin
    and fingerprint), dataset (resolved), pair, max_disp, params and seed. The pair's input fingerprint and the
    prediction file's digest are checked where the files are read (`run_compare`). A sidecar of another format
    (older StereoKit) never matches: its prediction is recomputed."""
    if not isinstance(side, dict) or side.get("format") != SIDECAR_FORMAT:
        return False
    try:
        same_params = _canonical(side.get("params")) == _canonical(task.params)
    except (TypeError, ValueError):
        return False
    return (
        same_params
        and side.get("method") == task.method
        and side.get("dataset") == task.dataset
        and side.get("pair") == task.pair
        and _canonical(side.get("max_disp")) == _canonical(task.max_disp)
        and _canonical(side.get("seed")) == _canonical(task.seed)
        and side.get("fingerprint") == task.fingerprint
        and side.get("matcher") == task.matcher
        and isinstance(side.get("inputs"), str)
        and isinstance(side.get("prediction"), str)
        and _finite_nonneg(side.get("seconds"))
        and all(side.get(k) is None or _finite_nonneg(side.get(k)) for k in ("cpu_seconds", "peak_mb"))
    )


def _finite_nonneg(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _warmup_ok(w: dict) -> bool:
    """A warm-up record as `_warm_up` writes it: seconds a time or null, crop a list of integers, error text."""
    crop = w.get("crop")
    return ((w.get("seconds") is None or _finite_nonneg(w.get("seconds")))
            and (crop is None or (isinstance(crop, list) and all(type(n) is int for n in crop)))
            and (w.get("error") is None or isinstance(w.get("error"), str)))


def _ced(hist: np.ndarray) -> list[float] | None:
    """Share (%) of scored pixels with error below each CED threshold, from an evaluator histogram."""
    total = int(hist.sum())
    if total == 0:
        return None
    cum = np.concatenate(([0], np.cumsum(hist)))  # cum[k] = count of errors < HIST_EDGES[k]
    idx = [int(np.searchsorted(HIST_EDGES, t)) for t in CED_THRESHOLDS]
    return [round(100.0 * cum[k] / total, 4) for k in idx]


def run_compare(
    datasets=None,
    methods=None,
    out: str | os.PathLike = DEFAULT_OUT,
    max_disp: int | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    force: bool = False,
    progress: bool | None = None,
    params: dict[str, dict] | None = None,
    seed: int = DEFAULT_SEED,
    gallery: int = GALLERY_PAIRS,
    report: bool = True,
    stream=None,
) -> dict:
    """Run `methods` (names; default: every registered matcher) on `datasets` (specs; default sample + synthetic:3;
    a single string is one name or spec), score every prediction, write DIR/results.json, results.csv and (with
    `report`) index.html. Returns the results dict.

    `max_disp`: disparities searched (default per dataset: its largest ground truth rounded up to a multiple of 16).
    `jobs` > 1: pairs in parallel processes; `scheduler`: a Dask scheduler address; `executor`: any
    concurrent.futures executor (overrides both). `params`: {method: {param: value}} passed to the matchers.
    `progress`: True bar, False log lines, None bar only on a terminal. A matcher that raises is recorded as a
    failure and the run goes on. Cached predictions in DIR/pred are reused unless `force`.
    """
    from stereokit.io import atomic_write_bytes, encode_disparity, read_disparity
    from stereokit.registry import matchers

    started = time.time()
    out = Path(out)
    if isinstance(datasets, str):  # one spec, not its characters
        datasets = [datasets]
    if isinstance(methods, str):
        methods = [methods]
    specs = list(DEFAULT_DATASETS if datasets is None else datasets)
    if not specs:  # an empty list is a caller's slip, not a request for the defaults (None)
        raise StereoKitError("datasets is empty; pass None for the default datasets")
    if len(set(specs)) != len(specs):
        raise StereoKitError(f"dataset given twice: {specs}")
    if methods is not None:
        method_list = list(dict.fromkeys(methods))
        if not method_list:
            raise StereoKitError("methods is empty; pass None to run every matcher")
    else:  # every registered matcher that can run as installed; the others are named, not silently dropped
        method_list = []
        for name in matchers:
            try:
                reason = matchers.unavailable_reason(name)
            except Exception as exc:  # a plug-in that cannot load (the registry names it and its entry point)
                reason = str(exc) if isinstance(exc, StereoKitError) else f"{type(exc).__name__}: {exc}"
            if reason:
                print(f"stereokit compare: skipping {name}: {reason}", file=stream or sys.stderr, flush=True)
            else:
                method_list.append(name)
    for m in method_list:
        resolve_method(m)  # a typo fails here, before any work; a matcher that fails to load fails per run
    if not method_list:
        raise StereoKitError("no matchers to compare")
    stray = sorted(set(params or {}) - set(method_list))
    if stray:
        raise StereoKitError(f"parameters given for {', '.join(stray)}, which is not among the compared matchers")
    params = {m: normalise_params((params or {}).get(m), m) for m in method_list}
    # Matchers registered in-process reach spawned worker processes only by 'module:qualname': refuse the others
    # now, rather than let the workers fail or use a built-in of the same name.
    forked = getattr(getattr(executor, "_mp_context", None), "get_start_method", lambda: None)() == "fork"
    if (isinstance(executor, cf.ProcessPoolExecutor) and not forked) or (
        executor is None and not scheduler and jobs and jobs > 1
    ):
        for m in method_list:
            why = _not_portable(m)
            if why:
                raise StereoKitError(
                    f"matcher {m!r} was registered in-process (stereokit.matchers.register) and cannot be passed "
                    f"to worker processes: {why}; declare it as an entry point in the 'stereokit.matchers' group, "
                    f"name it as MODULE:FUNCTION, or use --jobs 1"
                )
    origins = {m: matchers.origin(m) for m in method_list}
    targets = {m: _runtime_target(m) for m in method_list}
    stream = stream or sys.stderr
    for name, notes in matchers.clashes().items():  # entry points skipped for a name that was taken
        if name in method_list:
            for note in notes:
                print(f"stereokit compare: {note}", file=stream, flush=True)

    def log(text: str) -> None:
        print(text, file=stream, flush=True)

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "a file is in the way" if isinstance(exc, FileExistsError) else (exc.strerror or str(exc))
        raise StereoKitError(f"cannot create the output folder {out}: {why}") from None
    try:
        infos, opened = _open_datasets(specs, max_disp, out, gallery, log)
    except BaseException:
        if created:  # a bad dataset spec leaves no empty report folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise

    fingerprints = {m: _fingerprint(m, params[m]) for m in method_list}
    tasks = [
        Task(info.spec, info.key, i, name, m, info.max_disp, params[m], seed, fingerprints[m],
             dataset_identity(info.spec), origins[m], targets[m])
        for info in infos
        for i, name in enumerate(info.names)
        for m in method_list
    ]
    prog = _Progress(len(tasks), progress, stream)
    if prog.bar is None:
        log(
            f"stereokit compare: {len(method_list)} matcher(s) x "
            + ", ".join(f"{i.spec} ({len(i.names)} pairs, max_disp {i.max_disp})" for i in infos)
            + f" -> {out}"
        )

    # per (method, dskey, pair): {"result": PairResult|None, "timing": {...}, "cached": bool} or {"error": ...}
    records: dict[tuple[str, str, str], dict] = {}
    warmups: dict[str, dict] = {}  # from earlier runs
    new_warmups: dict[str, dict] = {}
    for m in method_list:
        prev = _read_json(out / "pred" / safe_token(m) / "warmup.json")
        if prev and _warmup_ok(prev):  # a damaged one is forgotten, not copied into results.json
            warmups[m] = prev

    def label(t: Task) -> str:
        return f"{t.method} on {t.dskey}/{t.pair}"

    def record_ok(t: Task, result: PairResult | None, timing: dict, cached: bool) -> None:
        records[(t.method, t.dskey, t.pair)] = {"result": result, "timing": timing, "cached": cached}
        d1 = result.all.to_dict()["D1-all"] if result is not None else None
        prog.step(label(t), f"{timing['seconds']:.3g} s{' (cached)' if cached else ''}, D1-all {_fmt_pct(d1)}")

    def record_fail(t: Task, message: str, tb: str | None, stage: str) -> None:
        records[(t.method, t.dskey, t.pair)] = {"error": message, "traceback": tb, "stage": stage}
        prog.step(label(t), f"FAILED: {message}")
        if prog.bar is not None:
            prog.log(f"FAILED {label(t)}: {message}")

    # 1. reuse cached predictions (scored here, where the pairs are already open)
    todo: list[Task] = []
    by_pair: dict[tuple[str, int], list[Task]] = {}
    for t in tasks:
        by_pair.setdefault((t.spec, t.index), []).append(t)
    for (spec, index), group in by_pair.items():
        cached = []
        for t in group:
            path = pred_path(out, t.method, t.dskey, t.pair)
            side = _read_json(path.with_suffix(".json"))
            if not force and path.is_file() and _sidecar_matches(side, t):
                cached.append((t, path, side))
            else:
                todo.append(t)
        if not cached:
            continue
        pair = opened[spec][index]
        inputs = input_fingerprint(pair)  # the images now: a prediction from other images is stale
        for t, path, side in cached:
            try:
                if side["inputs"] != inputs or _file_digest(path) != side["prediction"]:
                    raise StereoKitError("stale")
                pred = read_disparity(path)
                result = score_prediction(pair, pred) if pair.gt is not None else None
            except Exception:  # stale, replaced or unreadable cache: recompute
                todo.append(t)
                continue
            record_ok(t, result, {k: side.get(k) for k in ("seconds", "cpu_seconds", "peak_mb", "memory_method")}, True)

    # 2. run the rest on the executor
    own_executor = executor is None
    client = None
    if executor is None:
        executor, exec_desc, client = make_executor(jobs, scheduler) if todo else (None, "none (all cached)", None)
    else:
        exec_desc = type(executor).__name__
    if isinstance(executor, InlineExecutor):
        window = 1
    elif client is not None:
        window = max(4, 2 * sum(client.nthreads().values()))
    else:
        window = 2 * max(1, getattr(executor, "_max_workers", jobs or 1))
    def handle(t: Task, fut: cf.Future) -> None:
        try:
            res = fut.result()
        except Exception as exc:  # the worker itself died (segfault, out of memory, lost Dask worker)
            what = "the worker process died (crash or out of memory)" if isinstance(exc, cf.BrokenExecutor) else "worker failed"
            record_fail(t, f"{what}: {type(exc).__name__}: {exc}", traceback.format_exc(), "worker")
            return
        if res.get("warmup"):
            # each worker process warms up once per method: keep the slowest
            new, old = dict(res["warmup"], max_disp=t.max_disp), new_warmups.get(t.method)
            if old is None or new.get("seconds", 0) > old.get("seconds", 0):
                new_warmups[t.method] = new
                save_json(out / "pred" / safe_token(t.method) / "warmup.json", new)
        if not res["ok"]:
            record_fail(t, res["error"], res.get("traceback"), res.get("stage", "run"))
            return
        path = pred_path(out, t.method, t.dskey, t.pair)
        # The old sidecar goes first and the new one comes last: an interruption in between leaves a prediction
        # without a sidecar (recomputed next time), never a new prediction described by an old sidecar. The digest
        # is of the bytes written here, not re-read: another compare into the same folder may have replaced them.
        path.with_suffix(".json").unlink(missing_ok=True)
        data = encode_disparity(path, res["pred"])
        atomic_write_bytes(path, data)
        side = dict(
            res["timing"], format=SIDECAR_FORMAT, method=t.method, matcher=t.matcher, fingerprint=t.fingerprint,
            dataset=t.dataset, spec=t.spec, pair=t.pair, inputs=res["inputs"], max_disp=t.max_disp, params=t.params,
            seed=t.seed, prediction=_digest(data),
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        save_json(path.with_suffix(".json"), side)
        record_ok(t, res["result"], res["timing"], False)

    def submit(t: Task) -> cf.Future:
        nonlocal executor
        try:
            return executor.submit(run_task, t)
        except cf.BrokenExecutor:
            # a worker process died (segfault, killed for memory): its runs are recorded as failed; start a new pool
            if not (own_executor and isinstance(executor, cf.ProcessPoolExecutor)):
                raise
            executor.shutdown(wait=False, cancel_futures=True)
            executor = _process_pool(jobs)
            return executor.submit(run_task, t)

    try:
        if todo:
            # A bounded window of submitted tasks: results are written as they arrive (an interrupted run keeps
            # them), the in-process executor runs in task order, and a huge run does not queue every task at once.
            queue = iter(enumerate(todo))
            pending: dict[cf.Future, tuple[int, Task]] = {}
            broken: list[Task] = []

            def refill() -> None:
                if len(pending) >= window:
                    return
                for seq, t in queue:
                    if window == 1 and prog.bar is not None:  # in-process: this task runs now
                        prog.bar.set_postfix_str(f"running {label(t)}")
                    pending[submit(t)] = (seq, t)
                    if len(pending) >= window:
                        break

            refill()
            while pending:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: pending[f][0]):
                    seq, t = pending.pop(fut)
                    if isinstance(fut.exception(), cf.BrokenExecutor) and own_executor:
                        broken.append(t)  # maybe only a bystander of the task that killed the pool: retried alone
                        continue
                    handle(t, fut)
                refill()
            # Runs lost with a dead worker process, once more one at a time, so only the culprit fails.
            solo = None
            for t in broken:
                solo = solo or _process_pool(1)
                fut = solo.submit(run_task, t)
                cf.wait([fut])
                if isinstance(fut.exception(), cf.BrokenExecutor):
                    solo.shutdown(wait=False)
                    solo = None
                handle(t, fut)
            if solo is not None:
                solo.shutdown()
    except KeyboardInterrupt:
        prog.close()
        if own_executor and executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        prog.close()
        if own_executor and executor is not None:
            executor.shutdown(wait=True)
        if client is not None:
            client.close()

    warmups.update(new_warmups)

    results = _assemble(infos, method_list, params, records, warmups, out, seed, exec_desc, jobs, scheduler, force, started)
    save_json(out / "results.json", results)
    _write_text_atomic(out / "results.csv", results_csv(results))
    if report:
        from .report import build_report

        build_report(out, results)
    n_fail = len(results["failures"])
    log(
        f"stereokit compare: {len(tasks) - n_fail}/{len(tasks)} runs ok"
        + (f", {n_fail} failed" if n_fail else "")
        + f" in {time.time() - started:.1f} s; wrote {out / 'results.json'}, {out / 'results.csv'}"
        + (f", {out / 'index.html'}" if report else "")
    )
    return results


def _assemble(infos, method_list, params, records, warmups, out, seed, exec_desc, jobs, scheduler, force, started) -> dict:
    """The results.json document."""
    methods_out: dict[str, dict] = {}
    failures: list[dict] = []
    ced: dict[str, dict[str, list[float] | None]] = {}
    for m in method_list:
        per_ds = {}
        for info in infos:
            ok: dict[str, PairResult] = {}
            pair_extra: dict[str, dict] = {}
            fails: dict[str, str] = {}
            for name in info.names:
                rec = records.get((m, info.key, name))
                if rec is None or "error" in rec:
                    msg = rec["error"] if rec else "not run"
                    fails[name] = msg
                    failures.append(
                        {"method": m, "dataset": info.spec, "pair": name, "stage": (rec or {}).get("stage"),
                         "message": msg, "traceback": (rec or {}).get("traceback")}
                    )
                    continue
                timing = rec["timing"]
                pair_extra[name] = {
                    "seconds": timing.get("seconds"),
                    "cpu_seconds": timing.get("cpu_seconds"),
                    "peak_mb": timing.get("peak_mb"),
                    "cached": rec["cached"],
                }
                if rec["result"] is not None:
                    ok[name] = rec["result"]
            if ok:
                doc = evaluate_dataset(info.spec, ok).to_dict()
                hist = sum((r.tally_all.hist for r in ok.values()), np.zeros_like(next(iter(ok.values())).tally_all.hist))
                ced.setdefault(m, {})[info.key] = _ced(hist)
            else:
                doc = {"dataset": info.spec, "aggregate": {}, "pairs": {}}
            for name, extra in pair_extra.items():
                doc["pairs"].setdefault(name, {}).update(extra)
            secs = [e["seconds"] for e in pair_extra.values() if e["seconds"] is not None]
            mbs = [e["peak_mb"] for e in pair_extra.values() if e["peak_mb"] is not None]
            doc["seconds"] = {"mean": float(np.mean(secs)) if secs else None, "total": float(np.sum(secs)) if secs else None}
            doc["peak_mb"] = {"max": float(np.max(mbs)) if mbs else None, "mean": float(np.mean(mbs)) if mbs else None}
            doc["n_pairs"] = len(info.names)
            doc["n_ok"] = len(pair_extra)
            doc["failures"] = fails
            per_ds[info.key] = doc
        w = warmups.get(m)
        methods_out[m] = {
            "params": params[m],
            "warmup": w,
            "datasets": per_ds,
        }
    finished = time.time()
    settings = {
        "command": " ".join(["stereokit"] + sys.argv[1:]) if Path(sys.argv[0]).name == "stereokit" else None,
        "datasets": [
            {"spec": i.spec, "key": i.key, "name": i.name, "pairs": i.names, "max_disp": i.max_disp,
             "max_disp_source": i.max_disp_source, "max_gt": i.max_gt}
            for i in infos
        ],
        "methods": method_list,
        "params": params,
        "seed": seed,
        "executor": exec_desc,
        "jobs": jobs,
        "scheduler": scheduler,
        "force": force,
        "fill": True,
        "timing": "wall seconds of run_matcher after one warm-up per method and worker process (warm-up reported separately)",
        "memory": f"peak_mb: growth of the worker's peak resident set during the call ({_PeakMemory.method})",
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "finished": datetime.fromtimestamp(finished, timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(finished - started, 2),
        "versions": _versions(),
        "machine": _machine(),
    }
    return {
        "format": RESULTS_FORMAT,
        "metric_keys": list(METRIC_KEYS),
        "settings": settings,
        "methods": methods_out,
        "ced": {"thresholds": CED_THRESHOLDS, "percent_below": ced},
        "failures": failures,
    }


CSV_FIELDS = ["method", "dataset", "pair", "aggregate", "region", *METRIC_KEYS, "seconds", "cpu_seconds", "peak_mb", "status", "message"]


def results_csv(results: dict) -> str:
    """results.json flattened: one row per method, dataset, pair (or aggregate) and region; failures as rows."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    spec_of = {d["key"]: d["spec"] for d in results["settings"]["datasets"]}
    for m, mdoc in results["methods"].items():
        for key, doc in mdoc["datasets"].items():
            spec = spec_of.get(key, key)
            for pname, pdoc in doc["pairs"].items():
                for region in ("all", "noc"):
                    if region in pdoc:
                        writer.writerow({"method": m, "dataset": spec, "pair": pname, "aggregate": "", "region": region,
                                         **pdoc[region], "seconds": pdoc.get("seconds"),
                                         "cpu_seconds": pdoc.get("cpu_seconds"), "peak_mb": pdoc.get("peak_mb"), "status": "ok"})
            for kind, regions in doc.get("aggregate", {}).items():
                for region, figs in regions.items():
                    writer.writerow({"method": m, "dataset": spec, "pair": "", "aggregate": kind, "region": region, **figs,
                                     "seconds": doc["seconds"]["mean"], "peak_mb": doc["peak_mb"]["max"],
                                     "status": f"{doc['n_ok']}/{doc['n_pairs']} pairs"})
            for pname, msg in doc.get("failures", {}).items():
                writer.writerow({"method": m, "dataset": spec, "pair": pname, "status": "failed", "message": msg})
    return buf.getvalue()


class _ResultsShape:
    """Checks a results.json document against what the report reads; the first problem raises a StereoKitError
    that names the file and the key ('settings.datasets[0].max_disp_source is missing')."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str):
        raise StereoKitError(f"{self.source}: {where} {what}")

    @staticmethod
    def _kind(v) -> str:
        return "null" if v is None else {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
            type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)

    def get(self, obj: dict, key: str, where: str, kinds: tuple, what: str, required: bool = True, null: bool = False):
        path = f"{where}.{key}" if where else key
        if key not in obj:
            if required:
                self.fail(path, "is missing")
            return None
        return self.check(obj[key], path, kinds, what, null)

    def check(self, v, path: str, kinds: tuple, what: str, null: bool = False):
        if v is None and null:
            return None
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if ok and isinstance(v, float) and not math.isfinite(v):
            ok = False
        if not ok:
            self.fail(path, f"is {self._kind(v)}, expected {what}")
        return v

    def mapping(self, obj: dict, key: str, where: str, required: bool = False, null: bool = False) -> dict:
        return self.get(obj, key, where, (dict,), "an object", required, null) or {}


_NUM = (int, float)


def _item(where: str, key) -> str:
    return f"{where}[{json.dumps(key)}]"


def check_results(data, source: str | os.PathLike = "results.json") -> dict:
    """Check that `data` (a parsed results.json) has the format, keys and types the report reads; returns it.

    Raises StereoKitError naming `source` and the first missing or bad key. An empty comparison (no datasets or no
    methods) is an error too: there is nothing to report.
    """
    c = _ResultsShape(str(source))
    if not isinstance(data, dict):
        c.fail("the top level", f"is {c._kind(data)}, expected an object")
    fmt = c.get(data, "format", "", (int,), f"the integer {RESULTS_FORMAT}")
    if fmt != RESULTS_FORMAT:
        c.fail("format", f"is {fmt}, but this StereoKit reads format {RESULTS_FORMAT} only")
    st = c.mapping(data, "settings", "", required=True)
    datasets = c.get(st, "datasets", "settings", (list,), "a list")
    if not datasets:
        raise StereoKitError(f"{c.source}: settings.datasets is empty: the comparison has no datasets, so there is "
                             "nothing to report")
    keys = set()
    for i, d in enumerate(datasets):
        w = f"settings.datasets[{i}]"
        c.check(d, w, (dict,), "an object")
        c.get(d, "spec", w, (str,), "a string")
        key = c.get(d, "key", w, (str,), "a string")
        if key != safe_token(key) or key in keys:
            c.fail(f"{w}.key", f"{json.dumps(key)} is {'repeated' if key in keys else 'not a plain folder name'}")
        keys.add(key)
        for j, p in enumerate(c.get(d, "pairs", w, (list,), "a list")):
            c.check(p, f"{w}.pairs[{j}]", (str,), "a string")
        md = c.get(d, "max_disp", w, (int,), "a positive integer")
        if md < 1:
            c.fail(f"{w}.max_disp", f"is {md}, expected a positive integer")
        c.get(d, "max_disp_source", w, (str,), "a string")
        c.get(d, "max_gt", w, _NUM, "a number", required=False, null=True)
    for j, m in enumerate(c.get(st, "methods", "settings", (list,), "a list")):
        c.check(m, f"settings.methods[{j}]", (str,), "a string")
    for m, p in c.mapping(st, "params", "settings").items():
        c.check(p, _item("settings.params", m), (dict,), "an object", null=True)
    c.mapping(st, "versions", "settings")
    c.mapping(st, "machine", "settings")
    c.get(st, "command", "settings", (str,), "a string", required=False, null=True)

    methods = c.mapping(data, "methods", "", required=True)
    if not methods:
        raise StereoKitError(f"{c.source}: methods is empty: the comparison has no matchers, so there is nothing "
                             "to report")
    for m, mdoc in methods.items():
        w = _item("methods", m)
        c.check(mdoc, w, (dict,), "an object")
        warm = c.mapping(mdoc, "warmup", w, null=True)
        if warm:
            ww = f"{w}.warmup"
            c.get(warm, "seconds", ww, _NUM, "a number", required=False, null=True)
            for j, n in enumerate(c.get(warm, "crop", ww, (list,), "a list", required=False, null=True) or []):
                c.check(n, f"{ww}.crop[{j}]", (int,), "an integer")
            c.get(warm, "error", ww, (str,), "a string", required=False, null=True)
        for key, doc in c.mapping(mdoc, "datasets", w, required=True).items():
            wd = f"{w}.datasets{_item('', key)}"
            c.check(doc, wd, (dict,), "an object")
            for kind, regions in c.mapping(doc, "aggregate", wd).items():
                wk = f"{wd}.aggregate{_item('', kind)}"
                c.check(regions, wk, (dict,), "an object")
                for region, figs in regions.items():
                    c.check(figs, f"{wk}{_item('', region)}", (dict,), "an object")
            for pair, pdoc in c.mapping(doc, "pairs", wd).items():
                wp = f"{wd}.pairs{_item('', pair)}"
                c.check(pdoc, wp, (dict,), "an object")
                c.mapping(pdoc, "all", wp)
                c.mapping(pdoc, "noc", wp)
            for pair, msg in c.mapping(doc, "failures", wd).items():
                c.check(msg, f"{wd}.failures{_item('', pair)}", (str,), "a string", null=True)
            c.mapping(doc, "seconds", wd)
            c.mapping(doc, "peak_mb", wd)
            for k in ("n_pairs", "n_ok"):
                n = c.get(doc, k, wd, (int,), "a non-negative integer", required=False)
                if n is not None and n < 0:
                    c.fail(f"{wd}.{k}", f"is {n}, expected a non-negative integer")
    ced = c.mapping(data, "ced", "")
    thresholds = c.get(ced, "thresholds", "ced", (list,), "a list", required=False, null=True) or []
    for j, t in enumerate(thresholds):
        c.check(t, f"ced.thresholds[{j}]", _NUM, "a number")
    for m, per_ds in c.mapping(ced, "percent_below", "ced").items():
        wm = f"ced.percent_below{_item('', m)}"
        c.check(per_ds, wm, (dict,), "an object")
        for key, curve in per_ds.items():
            wc = f"{wm}{_item('', key)}"
            c.check(curve, wc, (list,), "a list", null=True)
            if curve and len(curve) != len(thresholds):
                c.fail(wc, f"has {len(curve)} values for {len(thresholds)} ced.thresholds")
            for j, v in enumerate(curve or []):
                c.check(v, f"{wc}[{j}]", _NUM, "a number")
    for j, f in enumerate(c.get(data, "failures", "", (list,), "a list", required=False) or []):
        wf = f"failures[{j}]"
        c.check(f, wf, (dict,), "an object")
        for k in ("method", "dataset", "pair", "message", "traceback"):
            c.get(f, k, wf, (str,), "a string", required=False, null=True)
    return data


def load_results(out: str | os.PathLike) -> dict:
    """Read DIR/results.json and check it with `check_results` (a StereoKitError naming the file and the problem
    if it is missing, not JSON, or not a `stereokit compare` result of this format)."""
    path = Path(out) / "results.json"
    if not path.is_file():
        raise StereoKitError(f"{path} not found: not a `stereokit compare` output folder (run `stereokit compare "
                             f"--out {out}` first)")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as exc:
        raise StereoKitError(f"{path} is not UTF-8 text: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise StereoKitError(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise StereoKitError(f"cannot read {path}: {exc.strerror or exc}") from None
    return check_results(data, path)


def cli(args) -> int:
    """`stereokit compare` (options parsed in stereokit.cli)."""
    from stereokit.cli import parse_params

    methods = None
    if getattr(args, "methods", None) is not None:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        if not methods:  # e.g. an unset shell variable: not a request for every matcher
            raise StereoKitError(f"--methods {args.methods!r} names no matcher; leave it out to run them all")
    if args.jobs is not None and args.jobs < 1:
        raise StereoKitError(f"--jobs must be at least 1, got {args.jobs}")
    if args.max_disp is not None and args.max_disp < 1:
        raise StereoKitError(f"--max-disp must be positive, got {args.max_disp}")
    params: dict[str, dict] = {}
    for item in getattr(args, "param", None) or ():
        key, sep, value = item.partition("=")
        method, dot, name = key.rpartition(".")
        if not sep or not dot or not method or not name:
            raise StereoKitError(f"bad --param {item!r}: expected METHOD.NAME=VALUE, e.g. sgm.paths=8")
        # as `stereokit match` does: every run would fail
        check_param_names({name.replace("-", "_"): None}, f"--param {key}=...", cli=True, instead=_COMPARE_OPTIONS)
        params.setdefault(method, {}).update(parse_params([f"{name}={value}"]))
    if methods is not None:
        stray = sorted(set(params) - set(methods))
        if stray:
            raise StereoKitError(f"--param for {', '.join(stray)}, which is not among --methods")
    gallery = getattr(args, "gallery", GALLERY_PAIRS)
    if gallery is not None and gallery < 0:
        raise StereoKitError(f"--gallery must be >= 0, got {gallery}")
    results = run_compare(
        datasets=args.dataset,
        methods=methods,
        params=params,
        gallery=GALLERY_PAIRS if gallery is None else gallery,
        out=args.out,
        max_disp=args.max_disp,
        jobs=args.jobs,
        scheduler=args.scheduler,
        force=args.force,
        progress=False if args.no_progress else None,
    )
    return 0 if len(results["failures"]) < sum(d["n_pairs"] for m in results["methods"].values() for d in m["datasets"].values()) else 1
