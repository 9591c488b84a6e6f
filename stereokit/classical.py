"""StereoKit's classical matchers: block matching (SAD, SSD, NCC, census) and SGM, registered by name.

Every matcher is the same chain of plain array functions::

    cost_volume (stereokit.cost)  ->  [SGM (stereokit.sgm)]  ->  disparity_from_volume:
        winner-takes-all + subpixel + uniqueness (stereokit.disparity)
        -> left-right check against the right disparity taken from the same volume
        -> median filter -> speckle removal -> optional background fill (stereokit.refine)

`sgm` and, on integer images, `bm-sad` / `bm-ssd` run fused equivalents of the first steps (census counts into
SGM with the winner-takes-all in its last pass; SAD/SSD window sums streamed into the winner-takes-all) that give
the same disparities without materialising the volumes (tests/test_sgm_fastpath.py, tests/test_blockmatch.py).

Signature of every matcher: ``f(pair, max_disp, *, min_disp=0, **options) -> float32 (H, W)`` disparity of the
left view, NaN invalid, searching ``[min_disp, min_disp + max_disp)``. Deterministic: same input, same output.
The defaults were chosen on real data (the eleven shared Middlebury scenes, mean bad-2.0 after KITTI-style
filling; see benchmarks/README.md), one set for all scenes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .blockmatch import block_match, block_match_supported
from .cost import cost_volume
from .disparity import _left_disparity, _wta_options
from .errors import StereoKitError
from .pair import StereoPair
from .refine import fill_invalid, median_filter, remove_speckles
from .validation import check_bool, check_disparity_range, check_number, reject_unknown

__all__ = ["disparity_from_volume", "bm_sad", "bm_ssd", "bm_ncc", "bm_census", "sgm_matcher", "REFINE_DEFAULTS"]

REFINE_DEFAULTS: dict[str, Any] = dict(
    subpixel="parabola", uniqueness=0.0, lr_threshold=1.0, median=3, speckle_size=100, speckle_diff=1.0, fill=False
)


def disparity_from_volume(
    volume: np.ndarray,
    min_disp: int = 0,
    *,
    subpixel: str | None = "parabola",
    uniqueness: float = 0.0,
    lr_threshold: float | None = 1.0,
    median: int = 3,
    speckle_size: int = 100,
    speckle_diff: float = 1.0,
    fill: bool = False,
) -> np.ndarray:
    """Disparity from a cost volume with the standard refinement chain; each step optional.

    subpixel: "parabola", "equiangular" or None; uniqueness: percent (0 = off); lr_threshold: px, None = no
    left-right check (the right disparity comes from the same volume); median: odd window size of the NaN-aware
    median (1 = off); speckle_size / speckle_diff: regions of at most that many pixels whose disparities differ
    by at most speckle_diff px from their neighbours' are invalidated (0 = off); fill: replace invalid pixels by
    KITTI background interpolation (the score under KITTI/Middlebury-with-fill protocols does not change; the
    density becomes 100 %).
    """
    disp = _left_disparity(volume, min_disp, subpixel, uniqueness, lr_threshold)
    return _postprocess(disp, median, speckle_size, speckle_diff, fill)


def _postprocess(disp: np.ndarray, median: int, speckle_size: int, speckle_diff: float, fill: bool) -> np.ndarray:
    """The refinement after winner-takes-all (and LR check): median -> speckle removal -> optional fill."""
    if median and median > 1:
        disp = median_filter(disp, median)
    if speckle_size and speckle_size > 0:
        disp = remove_speckles(disp, speckle_size, speckle_diff)
    if fill:
        disp = fill_invalid(disp)
    return disp


def _split_refine(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Refinement options from `params` (removed from it) over the matcher's `defaults`."""
    opts = dict(defaults)
    for key in REFINE_DEFAULTS:
        if key in params:
            opts[key] = params.pop(key)
    _check_refine(opts)
    return opts


def _check_refine(opts: dict[str, Any]) -> None:
    """Refuse refinement options of the wrong kind up front, naming the option (not a TypeError deep inside)."""

    _wta_options(opts["subpixel"], opts["uniqueness"])  # the checks winner_takes_all applies
    for key in ("lr_threshold", "speckle_diff"):
        if not (key == "lr_threshold" and opts[key] is None):  # None: no left-right check
            check_number(key, opts[key])
    for key in ("median", "speckle_size"):
        check_number(key, opts[key], integer=True)
    check_bool("fill", opts["fill"])


def _images(pair: StereoPair, color: bool) -> tuple[np.ndarray, np.ndarray]:
    return (pair.left_float, pair.right_float) if color else (pair.left_gray, pair.right_gray)


def _block_matcher(name: str, cost: str, window_default: int, refine_defaults: dict[str, Any], color_default: bool):
    def matcher(pair: StereoPair, max_disp: int, *, min_disp: int = 0, window: int = window_default,
                color: bool = color_default, **params) -> np.ndarray:
        min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
        color = check_bool(f"{name}: color", color)
        if window is None:  # cost_volume would read None as its own default, not this matcher's
            raise StereoKitError(f"{name}: window must be an odd integer (default {window_default}), got None")
        refine = _split_refine(params, refine_defaults)
        extra = {}
        if cost == "census":
            extra["census_window"] = params.pop("census_window", (5, 5))
        reject_unknown(name, params, ["min_disp", "window", "color", *REFINE_DEFAULTS, *extra])
        if cost in ("sad", "ssd") and (color or pair.channels == 1) and block_match_supported(pair.left, pair.right):
            # Same disparity as the volume path below (up to float ties), streamed without the (H, W, D) volume.
            disp = block_match(pair.left, pair.right, max_disp, min_disp, window=window, squared=cost == "ssd",
                               subpixel=refine["subpixel"], uniqueness=refine["uniqueness"],
                               lr_threshold=refine["lr_threshold"])
            return _postprocess(disp, refine["median"], refine["speckle_size"], refine["speckle_diff"],
                                refine["fill"])
        left, right = _images(pair, color)
        volume = cost_volume(left, right, max_disp, min_disp, cost=cost, window=window, **extra)
        return disparity_from_volume(volume, min_disp, **refine)

    matcher.__name__ = name.replace("-", "_")
    return matcher


_BM_REFINE = dict(REFINE_DEFAULTS, subpixel="equiangular", uniqueness=10.0)

# Defaults measured on the eleven shared Middlebury scenes (mean bad-2.0, KITTI-filled): see benchmarks/README.md.
bm_sad = _block_matcher("bm-sad", "sad", 7, _BM_REFINE, True)
bm_sad.__doc__ = """Block matching with the mean absolute difference over a `window` x `window` square (default 7).

Options: min_disp, window, color (default True: the cost is the mean over the RGB channels; False: gray), and the
refinement options of `disparity_from_volume` (defaults: equiangular subpixel, uniqueness 10 %, LR check 1 px,
3x3 median, speckles 100 px / 1 px, no fill). uint8 / uint16 pairs (colour, or gray input) take the fused kernel
`stereokit.blockmatch.block_match` (same disparities without the cost volume); float images and color=False on RGB the
volume path."""
bm_ssd = _block_matcher("bm-ssd", "ssd", 9, dict(_BM_REFINE, subpixel="parabola"), True)
bm_ssd.__doc__ = """Block matching with the mean squared difference over a square window (default 9, colour);
options as `bm_sad` (parabola subpixel by default; same fused fast path for uint8 / uint16 pairs)."""
bm_ncc = _block_matcher("bm-ncc", "ncc", 7, dict(_BM_REFINE, uniqueness=0.0), False)
bm_ncc.__doc__ = """Block matching with 1 - ZNCC over a square window (default 7) on the gray images: invariant to
gain and bias between the views. Options as `bm_sad` (no uniqueness test by default)."""
bm_census = _block_matcher("bm-census", "census", 5, dict(_BM_REFINE, uniqueness=0.0), False)
bm_census.__doc__ = """Block matching with the census Hamming distance (census_window default 5x5) averaged over a
square `window` (default 5): robust to any monotonic change of intensities. Options as `bm_sad` plus
census_window (odd int or (width, height), at most 64 neighbours); no uniqueness test by default."""


SGM_DEFAULTS: dict[str, Any] = dict(census_window=(9, 7), P1=8.0, P2=120.0, paths=8, p2_gamma=8.0 / 255.0)
SGM_REFINE_DEFAULTS: dict[str, Any] = dict(REFINE_DEFAULTS, speckle_size=300, speckle_diff=3.0)


def sgm_matcher(pair: StereoPair, max_disp: int, *, min_disp: int = 0, **params) -> np.ndarray:
    """Census + Semi-Global Matching (8 paths) + refinement: StereoKit's default classical matcher.

    Defaults (`SGM_DEFAULTS`, `SGM_REFINE_DEFAULTS`), tuned once on the eleven shared Middlebury scenes:
    census_window (9, 7) (odd int, (width, height) or "9x7"), P1 8 and P2 120 (Hamming bits), paths 8,
    p2_gamma 8/255 (P2 adapts to the left gray image along each path, ``max(P1, P2 / (1 + |dI| / p2_gamma))``
    with dI in [0, 1] units; None = constant P2), then parabola subpixel, left-right check 1 px against the right
    disparity of the same aggregated volume, 3x3 NaN-aware median, speckles of <= 300 px within 3 px removed,
    no fill. Any of them can be passed as a keyword (also the other options of `disparity_from_volume`).
    """
    from .cost import _window_size, census_counts
    from .sgm import sgm_census_disparity

    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    refine = _split_refine(params, SGM_REFINE_DEFAULTS)
    opts = dict(SGM_DEFAULTS)
    for key in SGM_DEFAULTS:
        if key in params:
            opts[key] = params.pop(key)
    reject_unknown("sgm", params, ["min_disp", *SGM_DEFAULTS, *REFINE_DEFAULTS])
    # Census counts (uint8) straight into SGM's exact int16 kernel, whose sums go row by row to winner-takes-all
    # and the left-right check: the same disparity as disparity_from_volume(sgm(cost_volume(..., cost="census"),
    # ...)) without the float32 cost volume, its validation pass or the aggregated volume (tested).
    volume, hi = census_counts(pair.left_gray, pair.right_gray, max_disp, min_disp,
                               census_window=opts["census_window"])
    ww, wh = _window_size(opts["census_window"], "census window")
    guide = None if opts["p2_gamma"] is None else pair.left_gray
    gamma = 8.0 / 255.0 if opts["p2_gamma"] is None else opts["p2_gamma"]
    disp = sgm_census_disparity(volume, hi, ww * wh - 1, opts["P1"], opts["P2"], opts["paths"], guide=guide,
                                p2_gamma=gamma, min_disp=min_disp, subpixel=refine["subpixel"],
                                uniqueness=refine["uniqueness"], lr_threshold=refine["lr_threshold"])
    del volume, hi
    return _postprocess(disp, refine["median"], refine["speckle_size"], refine["speckle_diff"], refine["fill"])
