"""Torch helpers shared by the learned matchers: device choice, seeding, safe weight loading/saving, option checks."""

from __future__ import annotations

import io
import json
import os
import random
import re
import sys
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from stereokit.errors import StereoKitError
from stereokit.validation import check_number  # noqa: F401  (re-exported: the trainers and matchers use it)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def available_devices() -> list[str]:
    """The device names this machine can run on: "cpu", then "cuda:0".. and "mps" when present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def choose_device(device: str | torch.device | int | None = None) -> torch.device:
    """`device` if given ("cpu", "cuda", "cuda:1", an int = CUDA index), else CUDA when available, else CPU.

    A device that is malformed or absent here raises StereoKitError naming it and the available ones: torch would
    only fail later (or with a RuntimeError listing every backend it knows, available or not).
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = available_devices()
    where = f"available: {', '.join(['auto'] + available)}"
    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):
        raise StereoKitError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}; {where}")
    try:
        dev = torch.device(f"cuda:{device}" if isinstance(device, int) else device)
    except (RuntimeError, ValueError, TypeError):
        raise StereoKitError(f"unknown device {device!r}; {where}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise StereoKitError(f"device {device!r} requested but CUDA is not available; {where}")
        if dev.index is not None and not 0 <= dev.index < torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise StereoKitError(f"device {device!r} does not exist ({count} CUDA device(s)); {where}")
        return dev
    if dev.type in available:  # mps
        return dev
    # meta, xla, ... parse but hold no data or are not set up here: the network could not run on them
    raise StereoKitError(f"device {device!r} is not available; {where}")


def weights_path(weights, default: str | os.PathLike) -> Path:
    """The weights file to load: `weights` (a path) or `default` when None; another type or "" raises StereoKitError."""
    if weights is None:
        return Path(default)
    if not isinstance(weights, (str, os.PathLike)) or str(weights) == "":
        raise StereoKitError(f"weights must be the path of a weights file, got {weights!r}")
    return Path(weights)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch.Generator seeded with `seed` for local use."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """`torch.load(path, weights_only=True)`; a missing, truncated or corrupt file raises StereoKitError naming it."""
    path = Path(path)
    if not path.is_file():
        raise StereoKitError(f"weights file not found: {path}")
    try:
        data = path.read_bytes()  # read once, for the checksums and for torch
    except OSError as exc:
        raise StereoKitError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    try:  # torch does not check the zip's CRC-32s: a flipped byte in a tensor record would load silently
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError):
        bad = None  # not a zip (legacy format) or damaged: torch.load below decides
    if bad is not None:
        raise StereoKitError(f"{path} is corrupt: its record {bad} fails its checksum")
    try:
        obj = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception:  # pickle/zip errors vary by torch version; all mean "not a usable weights file"
        # torch's own message spans lines and suggests weights_only=False (unsafe): not repeated
        raise StereoKitError(
            f"{path} is not a valid weights file (corrupt, truncated, not a torch file or holding Python objects "
            f"that are not plain data)"
        ) from None
    if not isinstance(obj, dict):
        raise StereoKitError(f"weights file {path} holds a {type(obj).__name__}, expected a dict (state_dict or checkpoint)")
    return obj


def load_state_dict(module: torch.nn.Module, state: dict, path: str | os.PathLike = "<state>") -> torch.nn.Module:
    """Load `state` strictly into `module` after `check_state_dict`."""
    check_state_dict(module, state, path)
    module.load_state_dict(state, strict=True)
    return module


def check_state_dict(module: torch.nn.Module, state: dict, path: str | os.PathLike = "<state>") -> None:
    """StereoKitError naming `path` unless `state` fits `module` exactly: the same keys, shapes, dense tensors of its
    kinds, finite values. `module` may live on the meta device (shapes only, nothing allocated)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise StereoKitError(
            f"weights file {path} does not match the network: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    for key, val in own.items():
        if not isinstance(state[key], torch.Tensor) or tuple(state[key].shape) != tuple(val.shape):
            got = tuple(state[key].shape) if isinstance(state[key], torch.Tensor) else type(state[key]).__name__
            raise StereoKitError(
                f"weights file {path} does not match the network: {key} has shape {got}, expected {tuple(val.shape)}"
            )
        t = state[key]
        # a float parameter may come in another float precision (it is cast); anything else would be cast silently
        same_kind = t.is_floating_point() if val.is_floating_point() else t.dtype == val.dtype
        if t.layout != torch.strided or t.is_quantized or t.device.type == "meta" or not same_kind:
            raise StereoKitError(f"weights file {path}: {key} is a {t.dtype} tensor ({t.layout}, on {t.device}); "
                                 f"expected dense {val.dtype} values")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise StereoKitError(f"weights file {path}: {key} holds NaN or infinite values")


@contextmanager
def restoring(path: str | os.PathLike) -> Iterator[None]:
    """Around the restore of a training checkpoint's state: a field that is missing or of the wrong type or shape
    (a damaged or hand-edited file) raises StereoKitError naming the file, not a KeyError from deep inside."""
    try:
        yield
    except StereoKitError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise StereoKitError(f"--resume: {path} is a damaged checkpoint ({type(exc).__name__}: {exc})") from None


def arithmetic(device: torch.device) -> str:
    """What, besides the seed, fixes a training run's bits: the device and torch's CPU thread count (parallel
    reductions sum in an order that depends on it)."""
    return f"{torch.device(device).type}, {torch.get_num_threads()} torch threads"


def note_other_arithmetic(saved, device: torch.device, path: str | os.PathLike) -> None:
    """On resume: say on stderr when the run continues on another device or thread count than it was checkpointed
    with, since its weights then differ in the last bits from an uninterrupted run's (the run itself is valid)."""
    now = arithmetic(device)
    if isinstance(saved, str) and saved != now:
        print(f"--resume: {path} was trained with {saved}, this run uses {now}: the weights will not be bit-identical "
              "to an uninterrupted run's (use --threads to match)", file=sys.stderr)


def check_resumed_iteration(start, path: str | os.PathLike) -> None:
    """The iteration a checkpoint resumes from must be a count >= 0 (checked on load: the run is sized by it)."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise StereoKitError(f"--resume: {path} is a damaged checkpoint (iteration {start!r})")


def json_list(text) -> list:
    """A checkpoint's JSON-encoded list (history, commands); anything else raises ValueError (see `restoring`)."""
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON list, got {type(value).__name__}")
    return value


NETWORKS = {"mccnn": "MC-CNN", "gcnet": "GC-Net"}
FILE_KINDS = ("weights", "checkpoint")


def checkpoint_format(network: str) -> str:
    """The `format` field of a training checkpoint of `network` ("mccnn" or "gcnet")."""
    return f"stereokit-{network}-checkpoint-1"


def file_kind(obj: dict) -> tuple[str, str] | None:
    """(network, "weights" | "checkpoint") a loaded StereoKit file is, from its `format` field; checkpoints written
    before they had one are recognised by their config (MC-CNN: a JSON string, GC-Net: a dict). None otherwise."""
    fmt = obj.get("format")
    if isinstance(fmt, str):
        m = re.fullmatch(r"stereokit-(mccnn|gcnet)-(checkpoint-)?\d+", fmt)
        return (m.group(1), "checkpoint" if m.group(2) else "weights") if m else None
    if "model" in obj and "config" in obj and "optimizer" in obj:
        if isinstance(obj["config"], str):
            return "mccnn", "checkpoint"
        if isinstance(obj["config"], dict):
            return "gcnet", "checkpoint"
    return None


def _a(network: str, kind: str) -> str:
    """`network` and `kind` with their article: "an MC-CNN checkpoint", "a GC-Net weights file"."""
    name = NETWORKS[network]
    return f"{'an' if name[0] in 'AEIMO' else 'a'} {name} {'weights file' if kind == 'weights' else kind}"


def check_kind(obj: dict, path: str | os.PathLike, network: str, kinds: Sequence[str] = FILE_KINDS,
               bare_ok: bool = False, flag: str = "") -> str | None:
    """The kind ("weights"/"checkpoint") of `obj`, loaded from `path`, which must be one of `kinds` of `network`.

    Another network's file, a file of another kind or (unless `bare_ok`, for a bare state_dict) an unrecognised one
    raises StereoKitError naming the file and what it is, e.g. "X is a GC-Net checkpoint, not an MC-CNN one"
    (prefixed with `flag`, the option that named the file, when given).
    """
    found = file_kind(obj)
    want = " or ".join(_a(network, k) for k in kinds)
    where = f"{flag}: {path}" if flag else f"{path}"
    if found is None:
        if bare_ok and "format" not in obj:
            return None
        fmt = f" (format {obj['format']!r})" if "format" in obj else ""
        raise StereoKitError(f"{where} is not {want}{fmt}")
    net, kind = found
    if net != network:
        article = _a(network, kind).split(" ", 1)[0]
        raise StereoKitError(f"{where} is {_a(net, kind)}, not {article} {NETWORKS[network]} one")
    if kind not in kinds:
        raise StereoKitError(f"{where} is {_a(net, kind)}, not {want}")
    return kind


def check_options(args, rules: dict[str, dict]) -> None:
    """Check the numeric options of a parsed command line before anything runs: `rules` maps an option's dest to
    check_number's keywords (integer=, positive=); None (not given) passes; the error names the option."""
    for dest, kw in rules.items():
        value = getattr(args, dest)
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is not None:
                check_number("--" + dest.replace("_", "-"), v, **kw)


def _existing_ancestor(path: Path) -> Path:
    """The nearest of `path`'s ancestors (itself included) that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(path: str | os.PathLike, flag: str, target: str | os.PathLike | None = None) -> Path:
    """`path` as a folder that exists or can be created and written in; else StereoKitError naming `flag` and
    `target` (the option's value, when `path` is the folder of a file)."""
    path = Path(path)
    target = path if target is None else target
    base = _existing_ancestor(path)
    if not base.is_dir():
        where = "" if base == Path(os.path.abspath(target)) else f": {base}"
        raise StereoKitError(f"{flag} {target}{where} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise StereoKitError(f"{flag} {target}: cannot write in {base}")
    return path


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """`path` as a file that can be written (not a folder, in a folder that exists or can be created)."""
    path = Path(path)
    if path.is_dir():
        raise StereoKitError(f"{flag} {path} is a folder; give a file path such as {path / 'weights.pt'}")
    check_output_folder(path.parent, flag, target=path)
    return path


def check_run_folder(run: Path, outputs: Sequence[str], resume: bool, flags: tuple[str, str]) -> None:
    """A new run (`resume` False) must not write over the checkpoint or weights of a previous run in `run`; a
    resumed one needs its checkpoint (`outputs[0]`). `flags`: the trainer's (resume flag, run folder flag)."""
    resume_flag, run_flag = flags
    check_output_folder(run, run_flag)
    if resume:
        if not (run / outputs[0]).is_file():
            raise StereoKitError(f"{resume_flag}: {run} holds no checkpoint to resume ({run / outputs[0]} is missing)")
        return
    found = [name for name in outputs if (run / name).exists()]
    if found:
        raise StereoKitError(
            f"{run} already holds a training run ({', '.join(found)}); continue it with {resume_flag} "
            f"or choose another {run_flag}"
        )


def merge_settings(saved: dict, given: dict, defaults: dict, flags: dict[str, str], path, free: Sequence[str] = ()) -> dict:
    """The settings of a resumed run: the checkpoint's `saved` ones, where an option given again must agree (else
    StereoKitError naming each option that differs, with both values); keys in `free` (e.g. the iteration count) may
    change; a key the checkpoint lacks (older files) takes the given value or `defaults`."""
    differ = [
        f"{flags[k]} {given[k]!r} (checkpoint: {saved[k]!r})"
        for k in given
        if k in saved and k not in free and not _same(given[k], saved[k])
    ]
    if differ:
        raise StereoKitError(
            f"--resume: {path} was trained with other settings: {'; '.join(differ)}; leave them out to continue "
            f"with the checkpoint's, or start a new run in another folder"
        )
    return {**defaults, **saved, **given}


def _same(a, b) -> bool:
    """Equal as settings: lists and tuples alike, ints and floats by value."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def open_log(path: Path, history: list[dict]):
    """OUT/log.jsonl opened for appending, first rewritten to hold exactly `history` (the records of the state being
    continued): a new run starts an empty log; a resumed one drops records written after its checkpoint."""
    from stereokit.io import atomic_write_bytes

    atomic_write_bytes(path, "".join(json.dumps(rec) + "\n" for rec in history).encode("utf-8"))
    return open(path, "a")


def save_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """`data` as indented JSON (the small file beside shipped weights), written atomically
    (`stereokit.io.atomic_write_bytes`)."""
    from stereokit.io import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save, written atomically by `stereokit.io.atomic_write_bytes` (unique temporary file, fsync, rename,
    cleaned up on error): never a half-written file."""
    from stereokit.io import atomic_write_bytes  # lazily, as elsewhere: OpenCV only when a file is written

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def recorded_iterations(path: Path) -> int | None:
    """The iteration count in the JSON written beside final weights (None when absent or unreadable)."""
    try:
        n = json.loads(Path(path).read_text(encoding="utf-8")).get("iterations")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return n if type(n) is int else None


def check_resume_position(start: int, total: int, weights: Path, path: str | os.PathLike, option: str) -> None:
    """A run resumed at iteration `start` of `total`: past the end, or at it with its final `weights` (and the JSON
    beside them recording `total`) written, raises; at it without them (stopped between its last checkpoint and its
    weights), says on stderr that only the weights are left to write."""
    if start < total:
        return
    if start > total or (weights.is_file() and recorded_iterations(weights.with_suffix(".json")) == total):
        raise StereoKitError(f"--resume: {path} is at iteration {start}, not below {option} {total}")
    print(f"--resume: {path} is at its last iteration ({total}); writing the final weights", file=sys.stderr)


def rng_state() -> dict:
    """Python, NumPy and torch RNG states, storable with weights_only=True (tensors and plain types only)."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], torch.tensor(py[1], dtype=torch.int64), py[2] if py[2] is not None else -1.0],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() returned."""
    v, internal, gauss = state["python"]
    random.setstate((int(v), tuple(int(x) for x in internal.tolist()), None if gauss == -1.0 else gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])


def file_fingerprint(path: str | os.PathLike) -> str | None:
    """sha256 of a file's bytes (first 16 hex digits), None when it does not exist: identifies a weights file."""
    import hashlib

    p = Path(path)
    if not p.is_file():
        return None
    return "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def weights_fingerprint(default: str | os.PathLike):
    """A matcher's `fingerprint` attribute (see stereokit.registry): the hash of `params["weights"]` when given, else
    of the `default` weights file."""

    def fingerprint(params: dict) -> str | None:
        return file_fingerprint(params.get("weights") or default)

    return fingerprint


def shared_data_dir() -> "Path | None":
    """$STEREOKIT_SHARED_DATA, else ../shared/data beside the repository; None when absent.

    Only training and benchmark defaults use it; nothing installed requires it.
    """
    import os
    from pathlib import Path

    env = os.environ.get("STEREOKIT_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return path if path.is_dir() else None
