"""`sceneflow:PATH`: the Scene Flow datasets (FlyingThings3D, Monkaa, Driving) in their documented layout.

PATH holds ``frames_cleanpass`` (used when present, else ``frames_finalpass``) and ``disparity``; PATH may also be
a ``frames_*pass`` folder itself, with ``disparity`` beside it. Every ``left`` folder below the frames folder gives
pairs ``.../left/NAME.png`` + ``.../right/NAME.png`` with GT ``disparity/.../left/NAME.pfm`` (same relative
path; positive left-view disparities, float32). Images may be ``.png`` or ``.webp``. There are no occlusion masks.
Pair names are the relative path without ``left``, joined by ``-`` (``TRAIN-A-0000-0006``).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from ..errors import StereoKitError
from ..io import read_disparity, read_image
from ..pair import StereoPair
from .base import Dataset, require_dir, unique_names

PASSES = ("frames_cleanpass", "frames_finalpass")
IMAGE_SUFFIXES = (".png", ".webp", ".jpg")


def _frames_and_disparity(root: Path) -> tuple[Path, Path]:
    if root.name in PASSES:
        frames, disp = root, root.parent / "disparity"
    else:
        frames = next((root / p for p in PASSES if (root / p).is_dir()), None)
        if frames is None:
            raise StereoKitError(f"not a Scene Flow folder: {root} has no {' or '.join(PASSES)} folder")
        disp = root / "disparity"
    if not disp.is_dir():
        raise StereoKitError(f"Scene Flow folder {frames.parent} has no disparity folder")
    return frames, disp


def sceneflow_dataset(path: str, spec: str) -> Dataset:
    root = require_dir(path, spec)
    frames_dir, disp_dir = _frames_and_disparity(root)
    entries: list[tuple[Path, Path, Path]] = []
    labels: list[str] = []
    for dirpath, dirnames, filenames in os.walk(frames_dir):
        dirnames.sort()
        d = Path(dirpath)
        if d.name != "left":
            continue
        rel = d.relative_to(frames_dir)
        for fname in sorted(filenames):
            f = Path(fname)
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            right = d.parent / "right" / fname
            gt = disp_dir / rel / f"{f.stem}.pfm"
            if right.is_file() and gt.is_file():
                entries.append((d / fname, right, gt))
                labels.append("-".join([*rel.parent.parts, f.stem]))
    if not entries:
        raise StereoKitError(f"no Scene Flow pairs under {frames_dir} (expected .../left/*.png with .../right/ "
                             f"images and {disp_dir}/.../left/*.pfm disparities)")
    names = unique_names(labels)
    return Dataset(spec, names, partial(_load_at, tuple(entries)))


def _load_at(entries: tuple[tuple[Path, Path, Path], ...], i: int) -> StereoPair:
    left, right, gt = entries[i]
    return StereoPair(left=read_image(left), right=read_image(right), gt=read_disparity(gt),
                      name=left.stem, meta={"path": str(left)})
