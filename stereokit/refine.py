"""Post-processing of disparity maps (float32 (H, W), NaN invalid): median filter, speckle removal, filling.

Each step is optional; the matchers in :mod:`stereokit.classical` chain them as
left-right check -> median -> speckle removal -> (fill).
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange

from .errors import StereoKitError
from .fill import fill_invalid_background
from .validation import check_number


def _check_disparity(disp: np.ndarray) -> np.ndarray:
    disp = np.asarray(disp)
    if disp.ndim != 2:
        raise StereoKitError(f"disparity must be 2-D, got shape {disp.shape}")
    return np.ascontiguousarray(disp, dtype=np.float32)


@njit(cache=True, inline="always")
def _valid_median(disp, y, x, r, buf):
    """Lower median of the valid (non-NaN) values of the window clipped to the image.

    Rank selection without data-dependent branches in the inner loops (an insertion sort is bound by branch
    mispredictions on these tiny windows): rank(i) = #{v_j < v_i} + #{j < i : v_j == v_i}.
    """
    h, w = disp.shape
    m = 0
    n = 0
    for yy in range(y - r, y + r + 1):
        for xx in range(x - r, x + r + 1):
            v = np.float32(np.inf)
            if 0 <= yy < h and 0 <= xx < w and not np.isnan(disp[yy, xx]):
                v = disp[yy, xx]
                n += 1
            buf[m] = v
            m += 1
    target = (n - 1) // 2
    for i in range(m):
        vi = buf[i]
        rank = 0
        for j in range(m):
            rank += (buf[j] < vi) + ((j < i) & (buf[j] == vi))
        if rank == target and vi < np.inf:
            return vi
    return np.float32(np.nan)


@njit(parallel=True, cache=True)
def _nan_median_kernel(disp, r, out):
    h, w = disp.shape
    for y in prange(h):
        buf = np.empty((2 * r + 1) * (2 * r + 1), dtype=np.float32)
        for x in range(w):
            out[y, x] = np.nan if np.isnan(disp[y, x]) else _valid_median(disp, y, x, r, buf)


@njit(parallel=True, cache=True)
def _nan_median_fixup(disp, r, ys, xs, out):
    n = ys.shape[0]
    nchunks = min(n, 64)
    for chunk in prange(nchunks):
        buf = np.empty((2 * r + 1) * (2 * r + 1), dtype=np.float32)
        for i in range(chunk * n // nchunks, (chunk + 1) * n // nchunks):
            y, x = ys[i], xs[i]
            out[y, x] = np.nan if np.isnan(disp[y, x]) else _valid_median(disp, y, x, r, buf)


# Odd-even transposition sort of 9 values: 9 rounds of compare-exchanges of neighbours, alternately from 0 and 1.
_SORT9 = np.array([(i, i + 1) for rnd in range(9) for i in range(rnd % 2, 8, 2)], dtype=np.int64)


@njit(parallel=True, cache=True)
def _median3_kernel(disp, pairs, out):
    """The 3x3 valid-only lower median of every pixel (disp has no +-inf), branch-free along each row: the 9
    neighbours, +inf where outside the image or invalid, are sorted by a compare-exchange network applied to whole
    rows at once (vectorises), and pixel x takes the ((n - 1) // 2)-th of its n valid values."""
    h, w = disp.shape
    inf = np.float32(np.inf)
    for y in prange(h):
        v = np.empty((9, w), np.float32)
        for k in range(9):
            yy = y + k // 3 - 1
            dx = k % 3 - 1
            row = v[k]
            if yy < 0 or yy >= h:
                row[:] = inf
                continue
            src = disp[yy]
            for x in range(w):
                xx = min(max(x + dx, 0), w - 1)
                t = src[xx]
                row[x] = inf if (t != t or xx != x + dx) else t
        for c in range(pairs.shape[0]):
            a = v[pairs[c, 0]]
            b = v[pairs[c, 1]]
            for x in range(w):
                lo = min(a[x], b[x])
                hi = max(a[x], b[x])
                a[x] = lo
                b[x] = hi
        for x in range(w):
            n = 0
            for k in range(9):
                n += v[k, x] < inf
            m = v[0, x]
            for k in range(1, 5):  # the lower median of at most 9 values is among the 5 smallest
                m = v[k, x] if k == (n - 1) // 2 else m
            out[y, x] = np.float32(np.nan) if disp[y, x] != disp[y, x] else m


def median_filter(disp: np.ndarray, size: int = 3) -> np.ndarray:
    """Median over a size x size window of the *valid* pixels; invalid (NaN) pixels stay invalid.

    Unlike OpenCV's medianBlur on its int16 maps (where invalid pixels vote as very small disparities), invalid
    neighbours are ignored, so valid pixels beside an occlusion keep their own depth. Windows are clipped at the
    border. An even count of valid values takes the lower median. Size 3 sorts the nine neighbours of a whole row at
    once (a sorting network); size 5 runs cv2.medianBlur where the window is full and valid and the exact
    valid-only median elsewhere.
    """
    disp = _check_disparity(disp)
    size = check_number("median size", size, integer=True, positive=True)
    if size % 2 == 0:
        raise StereoKitError(f"median size must be an odd positive integer, got {size}")
    if size == 1:
        return disp.copy()
    r = min(size // 2, max(disp.shape))  # a window past every border covers the whole image: no larger buffer
    size = 2 * r + 1
    out = np.empty_like(disp)
    h, w = disp.shape
    if size == 3 and not np.isinf(disp).any():
        _median3_kernel(disp, _SORT9, out)
        return out
    if size > 5 or h <= 2 * r or w <= 2 * r:
        _nan_median_kernel(disp, r, out)
        return out
    invalid = np.isnan(disp)
    out[:] = cv2.medianBlur(np.where(invalid, np.float32(0), disp), size)
    # Pixels whose window holds an invalid pixel or crosses the border: the exact valid-only median.
    fix = cv2.dilate(invalid.view(np.uint8), np.ones((size, size), np.uint8))
    fix[:r] = fix[-r:] = 1
    fix[:, :r] = fix[:, -r:] = 1
    out[invalid] = np.nan
    fix[invalid] = 0
    ys, xs = np.nonzero(fix)
    _nan_median_fixup(disp, r, ys, xs, out)
    return out


def remove_speckles(disp: np.ndarray, max_size: int = 100, max_diff: float = 1.0) -> np.ndarray:
    """Invalidate connected regions of at most `max_size` pixels (4-connectivity, neighbours within `max_diff` px
    belong to one region): the small isolated blobs mismatches leave. cv2.filterSpeckles on a 1/16-px int16 copy
    (OpenCV's own fixed-point format; ranges wider than 2047 px use a coarser step), so, as in OpenCV, neighbours
    are compared after each is rounded to 1/16 px: `max_diff` holds to within 1/16 px. 0 max_size disables it."""
    disp = _check_disparity(disp)
    max_size = check_number("speckle max_size", max_size, integer=True)
    max_diff = check_number("speckle max_diff", max_diff)
    max_size = min(max_size, disp.size)  # cv2 takes a C int; a region cannot be larger than the image
    if max_size <= 0:
        return disp.copy()
    lo, hi = _finite_range(disp)
    if not lo <= hi:  # no finite pixel
        return disp.copy()
    lo, hi = float(lo), float(hi)
    scale = 16.0 if (hi - lo) * 16.0 < 32000 else 32000.0 / max(hi - lo, 1.0)
    sentinel = -32768
    fixed = np.empty(disp.shape, dtype=np.int16)
    _to_fixed(disp, np.float32(lo), np.float32(scale), sentinel, fixed)
    cv2.filterSpeckles(fixed, sentinel, int(max_size), max(int(round(max_diff * scale)), 0))
    out = np.empty_like(disp)
    _drop_removed(disp, fixed, sentinel, out)
    return out


@njit(cache=True)
def _finite_range(disp):
    """(min, max) of the finite values; (inf, -inf) when there is none."""
    lo = np.float32(np.inf)
    hi = np.float32(-np.inf)
    for v in disp.ravel():
        if np.isfinite(v):
            lo = min(lo, v)
            hi = max(hi, v)
    return lo, hi


@njit(parallel=True, cache=True)
def _to_fixed(disp, lo, scale, sentinel, fixed):
    """fixed = round((disp - lo) * scale) in float32 (half to even), `sentinel` where disp is not finite."""
    h, w = disp.shape
    for y in prange(h):
        for x in range(w):
            v = disp[y, x]
            fixed[y, x] = np.int16(np.rint((v - lo) * scale)) if np.isfinite(v) else np.int16(sentinel)


@njit(parallel=True, cache=True)
def _drop_removed(disp, fixed, sentinel, out):
    h, w = disp.shape
    for y in prange(h):
        for x in range(w):
            out[y, x] = np.float32(np.nan) if fixed[y, x] == sentinel else disp[y, x]


def fill_invalid(disp: np.ndarray) -> np.ndarray:
    """Fill NaN pixels by background interpolation, exactly as the KITTI devkit does before scoring
    (:func:`stereokit.fill.fill_invalid_background`)."""
    return fill_invalid_background(_check_disparity(disp))
