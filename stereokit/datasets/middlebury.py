"""`middlebury:PATH`: Middlebury 2001, 2003, 2005, 2006, 2014 and MiddEval3 scenes, layout detected per scene.

Layouts (file names as distributed):

* ``im2`` (2001 / 2003): ``im2.png|ppm`` left, ``im6.png|ppm`` right, ``disp2.png|pgm`` left GT, ``disp6.png|pgm``
  right GT; 8-bit, 0 unknown, scale from `stereokit.io.middlebury_gt_scale` (tsukuba /16, other 2001 scenes /8,
  2003 by size: quarter /4, half /2, full /1); optional ``nonocc.png`` (255 = non-occluded).
* ``view1`` (2005 / 2006): ``view1.png`` left, ``view5.png`` right, ``disp1.png`` / ``disp5.png``; scale by width
  (full /1, half /2, third /3); ``dmin.txt`` (full-size disparity offset) goes to ``meta["dmin"]``.
* ``im0`` (2014 / MiddEval3, also ETH3D): ``im0.png``, ``im1.png``, ``disp0GT.pfm`` (MiddEval3) or ``disp0.pfm``
  (2014), ``mask0nocc.png`` (255 = non-occluded), ``calib.txt`` (focal from cam0, baseline, doffs -> `Calibration`;
  the parsed file in ``meta["calib"]``, ``ndisp`` as ``meta["max_disp"]``).

Full archives hold more views (2001/2003 ``im0``..``im8``, 2005/2006 ``view0``..``view6``): the layout whose own GT
or calibration files are present wins (``disp2``/``disp6``, ``disp1``/``disp5``/``dmin.txt``, ``disp0GT.pfm``/
``disp0.pfm``/``calib.txt``/``mask0nocc.png``); ``im0``/``im1`` need one of theirs. A folder with images but a missing
left or right image, an ambiguous or an unknown layout raises `StereoKitError` naming it; one without images is skipped.

Non-occlusion masks: taken from the mask file when there is one. Otherwise, when the right view's GT exists
(``disp6``, ``disp5``, ``disp1.pfm``), a left pixel is marked non-occluded iff it passes the left-right consistency
check of the two GT maps: ``|dL(x) - dR(round(x - dL(x)))| <= 1`` with the match inside the image and both known
(``meta["nonocc_source"] = "lr-check"``). With neither, ``nonocc`` is None. The right view's GT itself, where it
exists, is ``meta["gt_right"]`` (float32, right-referenced, NaN unknown; see `stereokit.datasets.views`).

``meta["max_disp"]`` is calib's ndisp when given and narrower than the image (``meta["ndisp"]`` keeps it either way),
else `stereokit.validation.max_disp_from_gt` (the smallest multiple of 16 above the largest GT disparity, below the
width): the same rule as `stereokit compare` and the benchmarks.
PATH may be a scene folder or a folder of scenes, nested up to two levels (``middlebury:/work/shared/data`` finds
``middlebury2001/tsukuba`` etc.); pair names are the scene folder names (prefixed by the parent folder on a clash).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..errors import StereoKitError
from ..io import (
    calibration_from_calib,
    middlebury_gt_scale,
    read_calib,
    read_image,
    read_mask,
    read_middlebury_gt,
)
from ..pair import StereoPair
from ..validation import max_disp_from_gt
from .base import Dataset, first_existing, pair_from_files, require_dir, unique_names

LR_TOLERANCE = 1.0


def _ext(*stems: str) -> list[str]:
    return [f"{s}.{e}" for s in stems for e in ("png", "ppm", "pgm", "pfm")]


# layout -> (left, right, left GT, right GT, nonocc mask) candidate file names
LAYOUTS: dict[str, tuple[list[str], list[str], list[str], list[str], list[str]]] = {
    "im0": (["im0.png"], ["im1.png"], ["disp0GT.pfm", "disp0.pfm"], ["disp1GT.pfm", "disp1.pfm"],
            ["mask0nocc.png"]),
    "view1": (["view1.png", "view1.ppm"], ["view5.png", "view5.ppm"], _ext("disp1"), _ext("disp5"),
              ["nonocc.png"]),
    "im2": (["im2.png", "im2.ppm"], ["im6.png", "im6.ppm"], _ext("disp2"), _ext("disp6"), ["nonocc.png"]),
}


# layout -> files only that layout has (GT, calibration): they tell the layouts apart in a full archive, where a
# 2001/2003 folder also holds im0/im1 (as .png) and a 2005/2006 folder holds view0..view6
MARKERS: dict[str, list[str]] = {
    "im0": ["disp0GT.pfm", "disp0.pfm", "calib.txt", "mask0nocc.png"],
    "view1": [f"{s}.{e}" for s in ("disp1", "disp5") for e in ("png", "pgm", "ppm")] + ["dmin.txt"],
    "im2": _ext("disp2", "disp6"),
}
IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pfm")


def _present(folder: Path, names: list[str]) -> list[str]:
    return [n for n in names if (folder / n).is_file()]


def image_files(folder: Path, exclude: tuple[str, ...] = ()) -> list[str]:
    """Sorted names of the image files (`IMAGE_SUFFIXES`) directly in `folder`, except `exclude`."""
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.name not in exclude)


def _alts(names: list[str]) -> str:
    return "|".join(names)


def detect_layout(folder: Path) -> str | None:
    """The scene layout of `folder` ('im0', 'view1' or 'im2'); None when it holds no image files at all.

    A layout needs its left and right images; where several layouts' images are present (full archives), the one
    whose own GT or calibration files are there wins. An incomplete, ambiguous or unknown scene raises
    `StereoKitError` naming what was found, so that a folder of scenes never shrinks silently.
    """
    marked = [k for k, m in MARKERS.items() if _present(folder, m)]
    if len(marked) > 1:
        found = ", ".join(n for k in marked for n in _present(folder, MARKERS[k]))
        raise StereoKitError(f"ambiguous Middlebury scene {folder}: it holds files of layouts {', '.join(marked)} "
                             f"({found})")
    return _complete(folder, marked[0]) if marked else _layout_by_images(folder)


def _layout_by_images(folder: Path) -> str | None:
    """The layout of a folder without GT or calibration files, told by its images alone (see `detect_layout`)."""
    pairs = [k for k, (left, right, *_r) in LAYOUTS.items()
             if first_existing(folder, left) and first_existing(folder, right)]
    if len(pairs) > 1:
        raise StereoKitError(f"ambiguous Middlebury scene {folder}: it holds the images of layouts {', '.join(pairs)} "
                             f"but no GT or calibration file telling them apart (disp2, disp1, disp0GT.pfm, calib.txt)")
    if pairs == ["im0"]:  # im0/im1 alone may be any archive's first two views: 2014/MiddEval3 ship calib.txt
        raise StereoKitError(f"Middlebury scene {folder} has im0.png/im1.png but none of disp0GT.pfm, disp0.pfm, "
                             f"calib.txt (2014/MiddEval3 layout)")
    if pairs:
        return pairs[0]
    for layout, (left, right, *_r) in LAYOUTS.items():
        if first_existing(folder, left) or first_existing(folder, right):
            return _complete(folder, layout)  # raises: one image of the pair is missing
    images = image_files(folder)
    if images:
        raise StereoKitError(f"{folder} holds images ({', '.join(images[:4])}{', ...' if len(images) > 4 else ''}) "
                             f"but no Middlebury layout (im0/im1, view1/view5 or im2/im6)")
    return None


def _complete(folder: Path, layout: str) -> str:
    """`layout`, or a `StereoKitError` naming the scene's missing left or right image."""
    left, right, *_r = LAYOUTS[layout]
    for cands in (left, right):
        if first_existing(folder, cands) is None:
            raise StereoKitError(f"incomplete Middlebury scene {folder}: {_alts(cands)} is missing "
                                 f"({layout} layout)")
    return layout


def find_scenes(root: Path, detect=detect_layout, depth: int = 2) -> list[Path]:
    """Scene folders: `root` itself if it is one, else scene folders up to `depth` levels below (sorted).

    `detect` returns None for a folder that is not a scene (skipped) and raises on an incomplete one.
    """
    if detect(root):
        return [root]
    found: list[Path] = []
    if depth <= 0:
        return found
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise StereoKitError(f"cannot list dataset folder {root}: {exc.strerror or exc}") from None
    seen: set[Path] = set()
    for child in children:
        for scene in find_scenes(child, detect, depth - 1):
            real = scene.resolve()
            if real not in seen:  # a linked folder reaching a scene twice must not count it twice
                seen.add(real)
                found.append(scene)
    return found


def lr_consistent(gt_left: np.ndarray, gt_right: np.ndarray, tol: float = LR_TOLERANCE) -> np.ndarray:
    """Left pixels whose GT agrees with the right view's GT at x - d (rounded): |dL - dR| <= tol, both known."""
    h, w = gt_left.shape
    xs = np.arange(w)[None, :] - np.nan_to_num(gt_left, nan=-1e9)
    xr = np.rint(xs)
    ok = np.isfinite(gt_left) & (xr >= 0) & (xr <= w - 1)
    xr_i = np.clip(xr, 0, w - 1).astype(np.intp)
    d_r = np.take_along_axis(gt_right, xr_i, axis=1)
    with np.errstate(invalid="ignore"):
        return ok & np.isfinite(d_r) & (np.abs(gt_left - d_r) <= tol)


def _max_disp(gt: np.ndarray | None, width: int) -> int | None:
    if gt is None or not np.isfinite(gt).any():
        return None
    return max_disp_from_gt(float(np.nanmax(gt)), width)


def load_scene(folder: Path, layout: str | None = None, gt_dirs: tuple[Path, ...] = ()) -> StereoPair:
    """One Middlebury-style scene folder as a `StereoPair` (see the module docstring); GT files may also be looked
    up in `gt_dirs` (ETH3D ships its GT separately)."""
    folder = Path(folder)
    layout = layout or detect_layout(folder)
    if layout is None:
        raise StereoKitError(f"no Middlebury scene in {folder} (expected im0/im1, view1/view5 or im2/im6 images)")
    left_c, right_c, gtl_c, gtr_c, mask_c = LAYOUTS[layout]
    left = read_image(first_existing(folder, left_c))
    right = read_image(first_existing(folder, right_c))
    h, w = left.shape[:2]
    dirs = (folder, *gt_dirs)

    def find(cands):
        for d in dirs:
            p = first_existing(d, cands)
            if p is not None:
                return p
        return None

    meta: dict = {"layout": layout, "path": str(folder)}
    scale = middlebury_gt_scale(folder.name, w, h, layout) if layout != "im0" else 1
    if layout != "im0":
        meta["gt_scale"] = scale
    gt_path, gtr_path, mask_path = find(gtl_c), find(gtr_c), find(mask_c)
    gt = read_middlebury_gt(gt_path, scale) if gt_path else None
    if gt is not None and gt.shape != (h, w):
        raise StereoKitError(f"ground truth {gt_path} is {gt.shape[1]}x{gt.shape[0]}, images are {w}x{h}")
    gt_r = read_middlebury_gt(gtr_path, scale) if (gt is not None and gtr_path is not None) else None
    if gt_r is not None:
        if gt_r.shape != gt.shape:
            raise StereoKitError(f"right-view ground truth {gtr_path} is {gt_r.shape[1]}x{gt_r.shape[0]}, images are "
                                 f"{w}x{h}")
        meta["gt_right"] = gt_r
    nonocc = None
    if mask_path is not None:
        nonocc = read_mask(mask_path)
        meta["nonocc_source"] = mask_path.name
    elif "gt_right" in meta:
        nonocc = lr_consistent(gt, gt_r)
        meta["nonocc_source"] = "lr-check"
    if nonocc is not None and nonocc.shape != (h, w):
        raise StereoKitError(f"occlusion mask {mask_path} is {nonocc.shape[1]}x{nonocc.shape[0]}, images are {w}x{h}")

    calib = None
    calib_path = find(["calib.txt"])
    if calib_path is not None:
        parsed = read_calib(calib_path)
        meta["calib"] = parsed
        calib = calibration_from_calib(parsed, calib_path)
        if "ndisp" in parsed:
            nd = parsed["ndisp"]
            if not isinstance(nd, int) or nd <= 0:
                raise StereoKitError(f"calibration file {calib_path}: ndisp {nd!r} is not a positive integer")
            meta["ndisp"] = nd
            if nd < w:
                meta["max_disp"] = nd
    dmin_path = folder / "dmin.txt"
    if dmin_path.is_file():
        meta["dmin"] = _read_dmin(dmin_path)
    if "max_disp" not in meta:
        md = _max_disp(gt, w)
        if md is not None:
            meta["max_disp"] = md
    return pair_from_files(f"Middlebury scene {folder}", left=left, right=right, gt=gt, nonocc=nonocc, calib=calib,
                           name=folder.name, meta=meta)


def _read_dmin(path: Path) -> float:
    """The one number of a Middlebury 2005/2006 dmin.txt (the disparity offset of the full-size images)."""
    try:
        tokens = path.read_text(encoding="utf-8").split()
        value = float(tokens[0]) if len(tokens) == 1 else None
    except (OSError, UnicodeDecodeError, ValueError):
        value = None
    if value is None or not np.isfinite(value):
        raise StereoKitError(f"{path} does not hold one finite number (the disparity offset of the full-size images)")
    return value


def middlebury_dataset(path: str, spec: str) -> Dataset:
    root = require_dir(path, spec)
    scenes = find_scenes(root)
    if not scenes:
        raise StereoKitError(f"no Middlebury scenes under {root} (looked for folders with im0.png/im1.png, "
                             f"view1.png/view5.png or im2/im6 images, two levels deep)")
    layouts = [detect_layout(s) for s in scenes]
    names = unique_names([s.name for s in scenes], [s.parent.name for s in scenes])
    return Dataset(spec, names, partial(_load_at, tuple(scenes), tuple(layouts)))


def _load_at(scenes: tuple[Path, ...], layouts: tuple[str, ...], i: int) -> StereoPair:
    return load_scene(scenes[i], layouts[i])
