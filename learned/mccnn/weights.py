"""Loading MC-CNN weights: the shipped files in learned/weights or a user's file, validated, cached per process."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import torch

from learned.common import WEIGHTS_DIR, check_kind, choose_device, load_checkpoint, load_state_dict, weights_path
from stereokit.errors import StereoKitError

from .model import build_model

_CACHE: dict = {}
_LOCK = threading.Lock()


def shipped_weights(arch: str) -> Path:
    """Path of the shipped weights of `arch` ("fast" or "acrt") (it may not exist)."""
    return WEIGHTS_DIR / f"mccnn_{arch}.pt"


def checkpoint_config(obj: dict, path: str | os.PathLike) -> dict:
    """The training settings stored in an MC-CNN checkpoint (a JSON string); StereoKitError if unreadable."""
    try:
        cfg = json.loads(obj["config"])
    except (KeyError, TypeError, ValueError):
        cfg = None
    if not isinstance(cfg, dict):
        raise StereoKitError(f"{path} is an MC-CNN checkpoint without readable settings (its config)")
    return cfg


def model_from_file(path: str | os.PathLike, arch: str | None = None, device=None):
    """Build the network a weights file describes and load it (torch.load weights_only=True).

    Accepts the exported format ({format, arch, setting, in_channels, state_dict}), a training checkpoint
    (its "model" and "config"), or a bare state_dict when `arch` is given (setting inferred from the depth).
    A corrupt file, a file for another architecture or mismatched shapes raise StereoKitError naming the file.
    """
    path = Path(path)
    obj = load_checkpoint(path)
    kind = check_kind(obj, path, "mccnn", bare_ok=True)  # another network's file: say so, by its format field
    setting, in_ch = None, 1
    if kind == "weights" or (kind is None and "state_dict" in obj):
        state = obj.get("state_dict")
        file_arch, setting, in_ch = obj.get("arch"), obj.get("setting"), obj.get("in_channels", 1)
    elif kind == "checkpoint":
        state, cfg = obj.get("model"), checkpoint_config(obj, path)
        file_arch, setting = cfg.get("arch"), cfg.get("setting")
    else:
        state, file_arch = obj, None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise StereoKitError(f"weights file {path} holds no state_dict of tensors")
    for field, value in (("arch", file_arch), ("setting", setting)):
        if value is not None and not isinstance(value, str):
            raise StereoKitError(f"weights file {path}: its {field} {value!r} is not a name")
    if isinstance(in_ch, bool) or not isinstance(in_ch, int) or in_ch != 1:
        raise StereoKitError(f"weights file {path}: in_channels {in_ch!r}; MC-CNN matches gray images, as in the "
                             "paper (1 channel)")
    if file_arch is not None and arch is not None and file_arch != arch:
        raise StereoKitError(f"weights file {path} holds MC-CNN-{file_arch} weights, not MC-CNN-{arch}")
    arch = file_arch or arch
    if arch is None:
        raise StereoKitError(f"weights file {path} does not say which MC-CNN architecture it holds")
    if setting is None:
        convs = sum(1 for k in state if k.startswith("tower.") and k.endswith(".weight"))
        setting = {5: "middlebury", 4: "kitti"}.get(convs)
        if setting is None:
            raise StereoKitError(f"weights file {path} has {convs} conv layers; MC-CNN uses 5 (Middlebury) or 4 (KITTI)")
    try:
        model = build_model(arch, setting, in_ch)
    except StereoKitError as exc:
        raise StereoKitError(f"weights file {path}: {exc}") from None
    load_state_dict(model, state, path)
    return model.to(choose_device(device)).eval()


def load_model(arch: str, weights: str | os.PathLike | None = None, device=None):
    """The network for `arch` with `weights` (default: the shipped file), cached per (file, mtime, device)."""
    path = weights_path(weights, shipped_weights(arch))
    if weights is None and not path.is_file():
        raise StereoKitError(
            f"no MC-CNN-{arch} weights are shipped ({path} is missing). Train them with "
            f"`stereokit train mccnn --arch {arch} --out runs/mccnn-{arch} --export {path}` "
            f"or pass weights=PATH to the matcher"
        )
    dev = choose_device(device)
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns, str(dev), arch)
    except OSError:
        raise StereoKitError(f"weights file not found: {path}") from None
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = model_from_file(path, arch, dev)
        return _CACHE[key]
