"""Datasets: lazy, sized sequences of `StereoPair` named by a spec string (the CLI's `--dataset`).

Specs (see `describe_specs()`): `sample`, `synthetic[:N[:SEED]]`, `middlebury:PATH`, `kitti2012:PATH`,
`kitti2015:PATH`, `eth3d:PATH`, `sceneflow:PATH[:train|test]`.

    >>> from stereokit.datasets import open_dataset
    >>> ds = open_dataset("synthetic:4:10")
    >>> len(ds), ds.names[0]
    (4, 'synthetic-00010')
    >>> pair = ds[0]          # generated (or read) only now; also ds["synthetic-00010"], iteration, slices

A `Dataset` has `.name` (its spec), `.names` (unique, filesystem-safe pair names: predictions are stored as
`<name>.pfm|png|npy`), `len()`, indexing by position or name, and iteration; nothing is read before a pair is
indexed. Each pair carries what its source provides: `gt` (float32, NaN unknown), `nonocc`, `fg` (KITTI 2015
object map; synthetic objects), `calib`, and `meta` with at least `max_disp` where it is known (calib.txt's ndisp;
else the smallest multiple of 16 above the GT maximum for old Middlebury scenes; 192 for KITTI; the generator's
range for synthetic; 64 for sample).
"""

from __future__ import annotations

import importlib

from ..errors import StereoKitError
from .base import Dataset

__all__ = ["Dataset", "open_dataset", "describe_specs", "synthetic_spec_args", "SPECS"]

# spec keyword -> (usage, description, "module:function" taking (path, spec) for path specs)
SPECS: dict[str, tuple[str, str, str | None]] = {
    "sample": ("sample", "Middlebury 2014 Motorcycle (741x500, GT 7-60 px, max_disp 64) shipped with scikit-image; "
               "needs nothing", None),
    "synthetic": ("synthetic[:N[:SEED]]", "N random scenes (default 8) with exact GT, nonocc and fg masks, seeds "
                  "SEED..SEED+N-1 (default 0), 240x320, disparities 0-47 px; needs nothing", None),
    "middlebury": ("middlebury:PATH", "Middlebury 2001/2003 (im2/im6/disp2), 2005/2006 (view1/view5/disp1), "
                   "2014/MiddEval3 (im0/im1/disp0GT.pfm/mask0nocc.png/calib.txt); PATH = one scene folder or a "
                   "folder of them (two levels deep)", "middlebury:middlebury_dataset"),
    "kitti2012": ("kitti2012:PATH", "KITTI 2012 training layout: colored_0|image_0, colored_1|image_1, disp_occ, "
                  "disp_noc, calib (PATH or PATH/training); *_10 frames", "kitti:kitti2012_dataset"),
    "kitti2015": ("kitti2015:PATH", "KITTI 2015 training layout: image_2, image_3, disp_occ_0, disp_noc_0, obj_map "
                  "(fg), calib_cam_to_cam (PATH or PATH/training); *_10 frames", "kitti:kitti2015_dataset"),
    "eth3d": ("eth3d:PATH", "ETH3D two-view: SCENE/im0.png, im1.png, calib.txt, disp0GT.pfm, mask0nocc.png (GT may "
              "sit in a sibling two_view_training_gt/SCENE); PATH = one scene or a folder of them",
              "eth3d:eth3d_dataset"),
    "sceneflow": ("sceneflow:PATH[:train|test]", "Scene Flow (FlyingThings3D/Monkaa/Driving): PATH/frames_cleanpass "
                  "(else frames_finalpass)/.../left|right/*.png with PATH/disparity/.../left/*.pfm; PATH may also be "
                  "a folder inside frames_*pass (e.g. frames_cleanpass/TRAIN/A); :train or :test keeps "
                  "FlyingThings3D's official split (default: every pair under PATH)", "sceneflow:sceneflow_dataset"),
}


def describe_specs() -> list[tuple[str, str]]:
    """(usage, description) for every dataset spec, as `stereokit datasets` prints them."""
    return [(usage, text) for usage, text, _ in SPECS.values()]


def _parse_int(text: str, what: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StereoKitError(f"bad dataset spec {spec!r}: {what} must be an integer, got {text!r}") from None


def synthetic_spec_args(spec: str) -> tuple[int, int]:
    """(N, SEED) of a `synthetic[:N[:SEED]]` spec (defaults: `DEFAULT_COUNT`, 0); else StereoKitError naming `spec`.
    For callers that generate the scenes with other options (GC-Net's trainer: its own size and disparity range)."""
    from .synthetic import DEFAULT_COUNT

    kind, sep, rest = spec.strip().partition(":")
    parts = rest.split(":") if sep else []
    if kind.lower() != "synthetic" or len(parts) > 2:
        raise StereoKitError(f"bad dataset spec {spec!r}: expected synthetic[:N[:SEED]]")
    count = _parse_int(parts[0], "N", spec) if parts and parts[0] else DEFAULT_COUNT
    seed = _parse_int(parts[1], "SEED", spec) if len(parts) > 1 and parts[1] else 0
    return count, seed


def open_dataset(spec: str) -> Dataset:
    """The dataset named by `spec` (see `describe_specs()`); a bad spec or missing data raises `StereoKitError`."""
    if not isinstance(spec, str) or not spec.strip():
        raise StereoKitError(f"empty dataset spec; known: {', '.join(u for u, _ in describe_specs())}")
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    kind_l = kind.lower()
    if kind_l not in SPECS:
        raise StereoKitError(
            f"unknown dataset {kind!r} in spec {spec!r}; known: {', '.join(u for u, _ in describe_specs())}"
        )
    if kind_l == "sample":
        if sep:
            raise StereoKitError(f"bad dataset spec {spec!r}: `sample` takes no arguments")
        from .sample import sample_dataset

        return sample_dataset()
    if kind_l == "synthetic":
        from .synthetic import synthetic_dataset

        return synthetic_dataset(*synthetic_spec_args(spec))
    if not rest.strip():
        raise StereoKitError(f"bad dataset spec {spec!r}: expected {SPECS[kind_l][0]}")
    module, func = SPECS[kind_l][2].split(":")
    loader = getattr(importlib.import_module(f"{__name__}.{module}"), func)
    return loader(rest, spec)
