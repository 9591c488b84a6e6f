"""Torch helpers shared by the learned matchers: device choice, seeding, safe weight loading/saving, option checks."""

from __future__ import annotations

import math
import numbers
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from stereokit.errors import StereoKitError

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


def check_number(name: str, value, *, integer: bool = False, positive: bool = False) -> float | int:
    """`value` as a finite number >= 0 (> 0 when `positive`; an int when `integer`), else StereoKitError naming
    `name`: a string such as "x" from the command line would otherwise fail deep inside NumPy or torch."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and (value > 0 if positive else value >= 0):
        return int(value) if integer else float(value)
    kind = ("a positive " if positive else "a non-negative ") + ("integer" if integer else "number")
    raise StereoKitError(f"{name} must be {kind}, got {value!r}")


def check_bool(name: str, value) -> bool:
    """`value` if it is True or False, else StereoKitError: a string such as "no" would read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise StereoKitError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle/zip errors vary by torch version; all mean "not a usable weights file"
        raise StereoKitError(f"cannot load weights file {path} (corrupt, truncated or not a torch file): {exc}") from exc
    if not isinstance(obj, dict):
        raise StereoKitError(f"weights file {path} holds a {type(obj).__name__}, expected a dict (state_dict or checkpoint)")
    return obj


def load_state_dict(module: torch.nn.Module, state: dict, path: str | os.PathLike = "<state>") -> torch.nn.Module:
    """Load `state` strictly into `module`; missing/unexpected keys or shape mismatches raise StereoKitError naming `path`."""
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
    module.load_state_dict(state, strict=True)
    return module


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same directory, then os.replace: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shipped weights unreadable to others
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
