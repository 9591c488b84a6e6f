"""`sceneflow:PATH[:train|test]`: the Scene Flow datasets (FlyingThings3D, Monkaa, Driving), documented layout.

PATH holds ``frames_cleanpass`` (used when present, else ``frames_finalpass``) and ``disparity``; PATH may also be
a ``frames_*pass`` folder itself or any folder inside one (``frames_cleanpass/TRAIN``, ``.../TRAIN/A``), with
``disparity`` beside the ``frames_*pass`` folder. Every ``left`` folder below PATH gives pairs ``.../left/NAME.png``
+ ``.../right/NAME.png`` with GT ``disparity/.../left/NAME.pfm`` (same relative path; positive left-view
disparities, float32). Images may be ``.png``, ``.webp`` or ``.jpg``. There are no occlusion masks. A left image
without its right image or its ``.pfm`` raises (a partial download never shrinks the set silently).

Split: without a suffix every pair under PATH is listed, FlyingThings3D's ``TRAIN`` and ``TEST`` together;
``:train`` or ``:test`` keeps the official split only (pairs under ``TRAIN`` / ``TEST``; Monkaa and Driving have
none). The suffix may follow a folder inside the tree too (``.../frames_cleanpass/TRAIN/A:train``).
Pair names are the path relative to the ``frames_*pass`` folder without ``left``, joined by ``-``
(``TRAIN-A-0000-0006``), whatever sub-folder PATH names.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from ..errors import StereoKitError
from ..io import read_disparity, read_image
from ..pair import StereoPair
from .base import Dataset, pair_from_files, require_dir, unique_names

PASSES = ("frames_cleanpass", "frames_finalpass")
IMAGE_SUFFIXES = (".png", ".webp", ".jpg")
SPLITS = {"train": "TRAIN", "test": "TEST"}  # spec suffix -> FlyingThings3D's split folder


def split_spec(path: str) -> tuple[str, str | None]:
    """`"PATH:train"` -> ("PATH", "TRAIN"); a PATH without a split suffix -> (PATH, None)."""
    head, sep, tail = path.rpartition(":")
    if sep and tail.strip().lower() in SPLITS:
        return head, SPLITS[tail.strip().lower()]
    return path, None


def _frames_and_disparity(root: Path) -> tuple[Path, Path]:
    """(the frames_*pass folder that `root` (absolute) is, holds or lies inside; the disparity folder beside it)."""
    frames = root if root.name in PASSES else next((root / p for p in PASSES if (root / p).is_dir()), None)
    if frames is None:
        frames = next((p for p in root.parents if p.name in PASSES), None)
    if frames is None:
        raise StereoKitError(f"not a Scene Flow folder: {root} has no {' or '.join(PASSES)} folder (nor lies inside "
                             f"one)")
    disp = frames.parent / "disparity"
    if not disp.is_dir():
        raise StereoKitError(f"Scene Flow folder {frames.parent} has no disparity folder")
    return frames, disp


def _split_root(walk: Path, frames_dir: Path, split: str | None) -> Path:
    """`walk` narrowed to the split's folder when a split is asked for (checked when `walk` lies inside one)."""
    if split is None:
        return walk
    rel = walk.relative_to(frames_dir).parts
    if rel and rel[0] != split:
        raise StereoKitError(f"Scene Flow folder {walk} is not in the {split} split that the spec asks for")
    if rel:
        return walk
    if not (frames_dir / split).is_dir():
        raise StereoKitError(f"Scene Flow split {split} needs the folder {frames_dir / split} (FlyingThings3D's "
                             f"layout; Monkaa and Driving have no official split)")
    return frames_dir / split


def _pairs(walk: Path, frames_dir: Path, disp_dir: Path) -> tuple[list[tuple[Path, Path, Path]], list[str]]:
    """(left, right, GT) paths and labels of every left image below `walk`; a missing right or GT file raises."""
    entries: list[tuple[Path, Path, Path]] = []
    labels: list[str] = []
    missing: list[tuple[str, Path]] = []
    def unreadable(exc: OSError) -> None:  # os.walk skips an unreadable folder silently: a shrunken set
        raise StereoKitError(f"cannot list Scene Flow folder {exc.filename}: {exc.strerror or exc}")

    for dirpath, dirnames, filenames in os.walk(walk, onerror=unreadable):
        dirnames.sort()
        d = Path(dirpath)
        if d.name != "left":
            continue
        rel = d.relative_to(frames_dir)
        for fname in sorted(filenames):
            f = Path(fname)
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            right, gt = d.parent / "right" / fname, disp_dir / rel / f"{f.stem}.pfm"
            label = "-".join([*rel.parent.parts, f.stem])
            missing.extend((label, p) for p in (right, gt) if not p.is_file())
            entries.append((d / fname, right, gt))
            labels.append(label)
    if missing:
        label, path = missing[0]
        raise StereoKitError(f"incomplete Scene Flow pair {label}: {path} is missing ({len(missing)} right image(s) "
                             f"or disparities missing under {walk})")
    return entries, labels


def sceneflow_dataset(path: str, spec: str) -> Dataset:
    path, split = split_spec(path)
    # abspath, not resolve: a symlinked frames_*pass folder must keep its name and its disparity sibling
    root = Path(os.path.abspath(require_dir(path, spec)))
    frames_dir, disp_dir = _frames_and_disparity(root)
    walk = _split_root(root if root.is_relative_to(frames_dir) else frames_dir, frames_dir, split)
    entries, labels = _pairs(walk, frames_dir, disp_dir)
    if not entries:
        raise StereoKitError(f"no Scene Flow pairs under {walk} (expected .../left/*.png with .../right/ "
                             f"images and {disp_dir}/.../left/*.pfm disparities)")
    return Dataset(spec, unique_names(labels), partial(_load_at, tuple(entries)))


def _load_at(entries: tuple[tuple[Path, Path, Path], ...], i: int) -> StereoPair:
    left, right, gt = entries[i]
    return pair_from_files(f"Scene Flow pair {left}, {right}, {gt}", left=read_image(left), right=read_image(right),
                           gt=read_disparity(gt), name=left.stem, meta={"path": str(left)})
