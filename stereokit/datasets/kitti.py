"""`kitti2012:PATH` and `kitti2015:PATH`: the KITTI stereo benchmarks' training layout.

PATH is the folder holding the image folders, or its parent with a ``training`` folder. Only ``*_10.png`` frames
(the ones with ground truth) are listed; pair names are the file stems (``000000_10``), so predictions saved as
``<name>.png`` follow KITTI's own naming.

* 2012: left ``colored_0`` (else gray ``image_0``), right ``colored_1`` (``image_1``); GT ``disp_occ`` (all pixels)
  and ``disp_noc`` (non-occluded); calibration from ``calib/<frame>.txt`` (P2/P3 for colour, P0/P1 for gray).
* 2015: left ``image_2``, right ``image_3``; GT ``disp_occ_0`` and ``disp_noc_0``; ``obj_map`` (0 = background)
  gives the ``fg`` mask for D1-fg; calibration from ``calib_cam_to_cam/<frame>.txt`` (P_rect_02 / P_rect_03).

``gt`` is disp_occ and ``nonocc`` the valid pixels of disp_noc; with only disp_noc, ``gt`` is disp_noc and
``nonocc`` None (every GT pixel is then non-occluded, so "all" scores are the non-occluded ones). Each GT or obj_map
folder must hold every frame's file or none (a testing folder: ``gt`` None throughout); a mix raises. Disparity PNGs
are uint16 with d = value / 256, 0 invalid (`stereokit.io.read_kitti_disparity`). The calibration gives focal length
(px) and baseline (m) from the rectified projection matrices. ``meta["max_disp"]`` is 192.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..errors import StereoKitError
from ..io import read_image, read_kitti_disparity
from ..pair import Calibration, StereoPair
from .base import Dataset, pair_from_files, require_dir

KITTI_MAX_DISP = 192

# year -> (left folders, right folders, occ GT, noc GT, object map, calib folder, (P left key, P right key) per left)
_LAYOUT = {
    2012: (("colored_0", "image_0"), ("colored_1", "image_1"), "disp_occ", "disp_noc", None, "calib",
           {"colored_0": ("P2", "P3"), "image_0": ("P0", "P1")}),
    2015: (("image_2",), ("image_3",), "disp_occ_0", "disp_noc_0", "obj_map", "calib_cam_to_cam",
           {"image_2": ("P_rect_02", "P_rect_03")}),
}


def read_kitti_calib(path: Path, keys: tuple[str, str]) -> Calibration:
    """Focal length and baseline from two 3x4 rectified projection matrices in a KITTI calibration file; a file
    without exactly one well-formed line for each key, or with a non-positive focal or baseline, raises."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StereoKitError(f"cannot read KITTI calibration file {path}: {exc}") from None
    mats = {}
    for line in text.splitlines():
        key, sep, vals = line.partition(":")
        key = key.strip()
        if not sep or key not in keys:
            continue
        if key in mats:
            raise StereoKitError(f"KITTI calibration file {path} has {key} twice")
        try:
            nums = [float(x) for x in vals.split()]
        except ValueError:
            nums = []
        if len(nums) != 12:
            raise StereoKitError(f"KITTI calibration file {path}: {key} is not 12 numbers (a 3x4 projection matrix)")
        mats[key] = np.array(nums).reshape(3, 4)
    missing = [k for k in keys if k not in mats]
    if missing:
        raise StereoKitError(f"KITTI calibration file {path} has no {' or '.join(missing)} line")
    pl, pr = mats[keys[0]], mats[keys[1]]
    f = pl[0, 0]
    try:
        return Calibration(focal=float(f), baseline=float((pl[0, 3] - pr[0, 3]) / f) if f else 0.0,
                           doffs=float(pr[0, 2] - pl[0, 2]))
    except StereoKitError as exc:
        raise StereoKitError(f"{path}: {exc}") from None


def _root(path: str, spec: str, left_dirs) -> Path:
    root = require_dir(path, spec)
    if not any((root / d).is_dir() for d in left_dirs) and (root / "training").is_dir():
        root = root / "training"
    return root


def kitti_dataset(path: str, spec: str, year: int) -> Dataset:
    left_dirs, right_dirs, occ_dir, noc_dir, obj_dir, calib_dir, pkeys = _LAYOUT[year]
    root = _root(path, spec, left_dirs)
    left_dir = next((root / d for d in left_dirs if (root / d).is_dir()), None)
    if left_dir is None:
        raise StereoKitError(f"not a KITTI {year} folder: {root} has no {' or '.join(left_dirs)} folder "
                             f"(nor a training/ folder with one)")
    right_dir = root / right_dirs[left_dirs.index(left_dir.name)]
    if not right_dir.is_dir():
        raise StereoKitError(f"KITTI {year} folder {root} has {left_dir.name} but no {right_dir.name} folder")
    frames = sorted(p.stem for p in left_dir.glob("*_10.png"))
    if not frames:
        raise StereoKitError(f"no *_10.png frames in {left_dir}")
    missing = [f for f in frames if not (right_dir / f"{f}.png").is_file()]
    if missing:
        raise StereoKitError(f"KITTI {year}: right image {right_dir / (missing[0] + '.png')} is missing "
                             f"({len(missing)} frame(s) without a right image)")
    for per_frame in (occ_dir, noc_dir, obj_dir):
        _check_all_or_none(root, per_frame, frames, year)
    keys = pkeys[left_dir.name]
    dirs = (root, left_dir, right_dir, occ_dir, noc_dir, obj_dir, calib_dir, keys)
    return Dataset(spec, frames, partial(_load_frame, dirs, tuple(frames)))


def _check_all_or_none(root: Path, folder: str | None, frames: list[str], year: int) -> None:
    """Every frame has `folder/<frame>.png`, or none does (a testing split); a mix raises, naming the first gap.

    A mix would give some frames GT (or masks) and score the others silently without them.
    """
    if folder is None:
        return
    missing = [f for f in frames if not (root / folder / f"{f}.png").is_file()]
    if missing and len(missing) < len(frames):
        raise StereoKitError(f"KITTI {year} frame {missing[0]}: {root / folder / (missing[0] + '.png')} is missing "
                             f"while other frames have one ({len(missing)} of {len(frames)} frame(s) without it)")


def _load_frame(dirs: tuple, frames: tuple[str, ...], i: int) -> StereoPair:
    root, left_dir, right_dir, occ_dir, noc_dir, obj_dir, calib_dir, keys = dirs
    frame = frames[i]
    left = read_image(left_dir / f"{frame}.png")
    right = read_image(right_dir / f"{frame}.png")
    occ_p, noc_p = root / occ_dir / f"{frame}.png", root / noc_dir / f"{frame}.png"
    occ = read_kitti_disparity(occ_p) if occ_p.is_file() else None
    noc = read_kitti_disparity(noc_p) if noc_p.is_file() else None
    gt = occ if occ is not None else noc
    nonocc = np.isfinite(noc) if (noc is not None and occ is not None) else None
    fg = None
    if obj_dir is not None and (root / obj_dir / f"{frame}.png").is_file():
        obj = read_image(root / obj_dir / f"{frame}.png")
        fg = (obj if obj.ndim == 2 else obj[:, :, 0]) > 0
    calib = None
    cpath = root / calib_dir / f"{frame.split('_')[0]}.txt"
    if cpath.is_file():
        calib = read_kitti_calib(cpath, keys)
    meta = {"max_disp": KITTI_MAX_DISP, "path": str(left_dir / f"{frame}.png")}
    return pair_from_files(f"KITTI {left_dir.parent.name} frame {frame} ({left_dir / frame}.png and its GT)", left=left,
                           right=right, gt=gt, nonocc=nonocc, fg=fg, calib=calib, name=frame, meta=meta)


def kitti2012_dataset(path: str, spec: str) -> Dataset:
    return kitti_dataset(path, spec, 2012)


def kitti2015_dataset(path: str, spec: str) -> Dataset:
    return kitti_dataset(path, spec, 2015)
