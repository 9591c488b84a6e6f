"""From a cost volume to a disparity map: winner-takes-all, subpixel fit, uniqueness, left-right check.

The volume is float32 (H, W, D), lower is better, index k is disparity ``min_disp + k``, ``+inf`` marks matches
outside the right image (see :mod:`stereokit.cost`). Ties go to the smallest disparity. The right view's disparity
comes from the *same* volume (``C_right(y, xr, d) = C(y, xr + d, d)``), so the left-right check needs no second
matching pass. NaN or -inf costs raise `StereoKitError`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .errors import StereoKitError
from .validation import check_cost_volume, check_min_disp, check_number

SUBPIXEL = ("parabola", "equiangular", None)
_SUBPIXEL_CODE = {None: 0, "none": 0, "parabola": 1, "equiangular": 2}


@njit(cache=True, inline="always")
def _lr_consistent(x, d, dr_row, threshold):
    """True when left disparity d at column x agrees with the right view within `threshold` px."""
    w = dr_row.shape[0]
    xr = np.floor(np.float32(x) - d + np.float32(0.5))
    if xr < 0 or xr >= w:
        return False
    r = dr_row[int(xr)]
    return abs(d - r) <= threshold  # False when r is NaN


@njit(cache=True, inline="always")
def _subpixel_delta(cm, best, cp, subpixel):
    """Offset in [-0.5, 0.5] of the minimum through the costs at k-1, k, k+1 (0 when a neighbour is +inf or flat).

    subpixel 1: parabola through the three costs; 2: equiangular, a symmetric V whose steeper side passes through
    the higher neighbour.
    """
    delta = 0.0
    if cm < np.inf and cp < np.inf:
        if subpixel == 1:
            den = cm - 2.0 * best + cp
        else:
            den = max(cm - best, cp - best)
        if den > 0:
            delta = min(max((cm - cp) / (2.0 * den), -0.5), 0.5)
    return delta


@njit(cache=True, inline="always")
def _wta_pixel(c, min_disp, subpixel, uniqueness, factor):
    """Disparity of one pixel from its cost vector `c` (NaN when every cost is +inf or the best is not unique)."""
    nd = c.shape[0]
    best = np.inf
    kb = -1
    for k in range(nd):
        if c[k] < best:
            best = c[k]
            kb = k
    if kb < 0:
        return np.float32(np.nan)
    return _wta_finish(c, kb, min_disp, subpixel, uniqueness, factor)


@njit(cache=True, inline="always")
def _wta_finish(c, kb, min_disp, subpixel, uniqueness, factor):
    """Disparity of a pixel whose lowest finite cost is c[kb] (the first such on ties): the uniqueness test, then
    the subpixel offset. factor = 100 / (100 - uniqueness)."""
    nd = c.shape[0]
    best = np.float64(c[kb])  # float64, as the argmin loop's: the equiangular fit's differences are taken in it
    if uniqueness > 0:
        limit = c[kb] * factor
        for k in range(nd):
            # strictly below the limit, as OpenCV's SGBM; an exact tie with the best is ambiguous too (flat costs)
            if (k < kb - 1 or k > kb + 1) and (c[k] < limit or c[k] == best):
                return np.float32(np.nan)
    delta = 0.0
    if subpixel > 0 and 0 < kb < nd - 1:
        delta = _subpixel_delta(c[kb - 1], best, c[kb + 1], subpixel)
    return np.float32(min_disp + kb + delta)


@njit(parallel=True, cache=True)
def _disparity_kernel(volume, min_disp, subpixel, uniqueness, lr_threshold, want_left, want_right, out_left,
                      out_right):
    """Per row, in one pass over the volume (a row of it stays in cache): right WTA, left WTA, left-right check."""
    h, w, nd = volume.shape
    factor = np.float32(100.0 / (100.0 - uniqueness) if uniqueness > 0 else 1.0)
    for y in prange(h):
        if want_right:
            # C_right(xr, k) = C(xr + min_disp + k, k): a strided walk through a row that stays in cache; strict <
            # keeps the smallest disparity on ties.
            for xr in range(w):
                k0 = min(max(0, -xr - min_disp), nd)
                k1 = max(min(nd, w - xr - min_disp), k0)
                best = np.inf
                kb = -1
                for k in range(k0, k1):
                    c = volume[y, xr + min_disp + k, k]
                    if c < best:
                        best = c
                        kb = k
                out_right[y, xr] = np.float32(min_disp + kb) if kb >= 0 else np.float32(np.nan)
        if want_left:
            for x in range(w):
                d = _wta_pixel(volume[y, x], min_disp, subpixel, uniqueness, factor)
                if lr_threshold >= 0 and not np.isnan(d) and not _lr_consistent(x, d, out_right[y], lr_threshold):
                    d = np.float32(np.nan)
                out_left[y, x] = d


@njit(parallel=True, cache=True)
def _lr_kernel(dl, dr, threshold, out):
    h, w = dl.shape
    for y in prange(h):
        for x in range(w):
            d = dl[y, x]
            out[y, x] = d if (not np.isnan(d) and _lr_consistent(x, d, dr[y], threshold)) else np.float32(np.nan)


def _wta_options(subpixel: str | None, uniqueness: float) -> int:
    """The kernel's subpixel code, after checking the options winner_takes_all and disparity_with_lr_check share."""
    if not (subpixel is None or isinstance(subpixel, str)) or subpixel not in _SUBPIXEL_CODE:
        raise StereoKitError(f"unknown subpixel method {subpixel!r}; choose parabola, equiangular or None")
    if check_number("uniqueness", uniqueness) >= 100.0:
        raise StereoKitError(f"uniqueness must be a percentage in [0, 100), got {uniqueness}")
    return _SUBPIXEL_CODE[subpixel]


def winner_takes_all(
    volume: np.ndarray, min_disp: int = 0, subpixel: str | None = "parabola", uniqueness: float = 0.0
) -> np.ndarray:
    """Left disparity float32 (H, W): the lowest-cost disparity per pixel, NaN where every cost is +inf.

    `subpixel`: ``"parabola"`` (fits c(d) = a d^2 + b d + c through the best cost and its two neighbours; the usual
    choice for smooth costs like SSD, NCC or SGM-aggregated costs), ``"equiangular"`` (a symmetric V, better for
    costs linear in the offset: SAD, census) or None. The offset is clamped to +-0.5 and skipped at the range ends.
    `uniqueness` (percent, OpenCV's uniquenessRatio): a pixel is invalid when some disparity more than one away
    from the best costs less than ``best * 100 / (100 - uniqueness)`` or exactly as much as the best (a tie: flat or
    saturated windows); 0 disables the test.
    """
    code = _wta_options(subpixel, uniqueness)
    volume = check_cost_volume(volume, scan_values=True)
    out = np.empty(volume.shape[:2], dtype=np.float32)
    _disparity_kernel(volume, check_min_disp(min_disp), code, float(uniqueness), -1.0, True, False, out, out)
    return out


def right_disparity(volume: np.ndarray, min_disp: int = 0) -> np.ndarray:
    """Right view's disparity float32 (H, W) from the left volume: argmin_d C(y, xr + d, d), integer-valued, NaN
    where no disparity maps inside the left image."""
    volume = check_cost_volume(volume, scan_values=True)
    out = np.empty(volume.shape[:2], dtype=np.float32)
    _disparity_kernel(volume, check_min_disp(min_disp), 0, 0.0, -1.0, False, True, out, out)
    return out


def left_right_check(disp_left: np.ndarray, disp_right: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Copy of `disp_left` with NaN where the right view disagrees: |d_L(x) - d_R(xr)| > threshold (pixels), with
    xr = x - d_L(x) rounded to the nearest column (halves up: floor(x - d_L(x) + 0.5), the match of the smaller
    disparity, as ties go to it), or the match falls outside the right image or on an invalid right pixel
    (occlusions, mismatches)."""
    dl = np.asarray(disp_left, dtype=np.float32)
    dr = np.asarray(disp_right, dtype=np.float32)
    if dl.shape != dr.shape or dl.ndim != 2:
        raise StereoKitError(f"left and right disparities must be 2-D of one shape, got {dl.shape} and {dr.shape}")
    threshold = check_number("the left-right threshold (px)", threshold)
    out = np.empty_like(dl)
    _lr_kernel(np.ascontiguousarray(dl), np.ascontiguousarray(dr), float(threshold), out)
    return out


def disparity_with_lr_check(
    volume: np.ndarray,
    min_disp: int = 0,
    subpixel: str | None = "parabola",
    uniqueness: float = 0.0,
    lr_threshold: float = 1.0,
) -> np.ndarray:
    """`left_right_check(winner_takes_all(volume, ...), right_disparity(volume), lr_threshold)` in one pass over
    the volume (the same per-pixel code, fused so the volume is read from memory once)."""
    code = _wta_options(subpixel, uniqueness)
    lr_threshold = check_number("the left-right threshold (px)", lr_threshold)
    volume = check_cost_volume(volume, scan_values=True)
    left = np.empty(volume.shape[:2], dtype=np.float32)
    right = np.empty(volume.shape[:2], dtype=np.float32)
    _disparity_kernel(volume, check_min_disp(min_disp), code, float(uniqueness), float(lr_threshold),
                      True, True, left, right)
    return left


def _left_disparity(volume: np.ndarray, min_disp: int, subpixel: str | None, uniqueness: float,
                    lr_threshold: float | None) -> np.ndarray:
    """`disparity_with_lr_check`, or `winner_takes_all` when lr_threshold is None: what the matchers' option
    ``lr_threshold=None`` (no left-right check) means."""
    if lr_threshold is None:
        return winner_takes_all(volume, min_disp, subpixel, uniqueness)
    return disparity_with_lr_check(volume, min_disp, subpixel, uniqueness, lr_threshold)
