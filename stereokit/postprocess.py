"""MC-CNN's disparity post-processing (Zbontar & LeCun, JMLR 2016, sec. 3.3.3-3.3.5), on plain arrays.

* `lr_labels` / `interpolate_lr`: the left-right check that tells occlusions from mismatches and fills each
  kind differently (occlusion: the nearest correct pixel to the left; mismatch: median of the nearest correct
  pixels in 16 directions);
* `subpixel_parabola`: the parabola through C(d-1), C(d), C(d+1);
* `thresholded_gaussian`: the paper's "bilateral" filter, a Gaussian over pixels whose disparity differs from the
  centre's by less than a threshold.
These work on any cost volume / disparity map (float32, NaN-free integer-valued disparities where stated).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .disparity import _lr_consistent
from .errors import StereoKitError
from .validation import check_cost_volume, check_min_disp, check_number

CORRECT, MISMATCH, OCCLUSION = 0, 1, 2

# The paper's 16 search directions for mismatches: the 8 neighbours and the 8 knight moves.
_DIRS16 = np.array([(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1),
                    (1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)], np.int64)


@njit(cache=True, parallel=True)
def _lr_labels(dl, dr, tol, min_disp):
    H, W = dl.shape
    out = np.zeros((H, W), np.uint8)
    for y in prange(H):
        for x in range(W):
            d = dl[y, x]
            if np.isfinite(d) and _lr_consistent(x, d, dr[y], tol):  # the test left_right_check applies
                continue
            # Mismatch when some disparity would be consistent (the pixel is visible in the right image),
            # occlusion otherwise.
            lab = OCCLUSION
            for xr2 in range(W):
                d2 = dr[y, xr2]
                if np.isfinite(d2) and abs(x - xr2 - d2) <= tol and x - xr2 >= min_disp:
                    lab = MISMATCH
                    break
            out[y, x] = lab
    return out


def lr_labels(disp_left: np.ndarray, disp_right: np.ndarray, tolerance: float = 1.0, min_disp: int = 0) -> np.ndarray:
    """uint8 labels: 0 correct (|d - D_R(x - d)| <= tolerance), 1 mismatch, 2 occlusion.

    A failing pixel is a mismatch when some disparity d' >= `min_disp` (the searched range's start) passes the check
    (|d' - D_R(x - d')| <= tolerance, tested through every right pixel whose disparity maps back onto x), an
    occlusion otherwise (paper, sec. 3.3.3). `disp_right` is the right view's disparity (its pixel x matches left
    x + d).
    """
    dl = np.asarray(disp_left, np.float32)
    dr = np.asarray(disp_right, np.float32)
    if dl.shape != dr.shape or dl.ndim != 2:
        raise StereoKitError(f"left and right disparities must be 2-D of one shape, got {dl.shape} and {dr.shape}")
    tol = check_number("tolerance", tolerance)
    return _lr_labels(dl, dr, np.float32(tol), check_min_disp(min_disp))


@njit(cache=True)
def _first_correct(disp, labels, y, x, step):
    xx = x + step
    while 0 <= xx < disp.shape[1]:
        if labels[y, xx] == 0:
            return disp[y, xx]
        xx += step
    return np.nan


@njit(cache=True, parallel=True)
def _interpolate(disp, labels, dirs, border):
    H, W = disp.shape
    out = disp.copy()
    buf_all = np.empty((H, dirs.shape[0]), np.float32)
    for y in prange(H):
        buf = buf_all[y]
        for x in range(W):
            lab = labels[y, x]
            if lab == 0:
                continue
            if lab == 2:  # occlusion: the first correct pixel to the left (background side); right in the border band
                first, second = (1, -1) if x < border else (-1, 1)
                v = _first_correct(disp, labels, y, x, first)
                if np.isnan(v):
                    v = _first_correct(disp, labels, y, x, second)
                out[y, x] = v
            else:  # mismatch: median of the nearest correct pixels along 16 directions
                n = 0
                for k in range(dirs.shape[0]):
                    dy, dx = dirs[k, 0], dirs[k, 1]
                    yy, xx = y + dy, x + dx
                    while 0 <= yy < H and 0 <= xx < W:
                        if labels[yy, xx] == 0:
                            buf[n] = disp[yy, xx]
                            n += 1
                            break
                        yy += dy
                        xx += dx
                # MC-CNN's code takes vals[n / 2] of the sorted values: a real neighbour, never the mean of two
                out[y, x] = np.sort(buf[:n])[n // 2] if n > 0 else np.nan
    return out


def interpolate_lr(disp: np.ndarray, labels: np.ndarray, border: int = 0) -> np.ndarray:
    """Fill the pixels `lr_labels` rejected: occlusions from the nearest correct pixel to their left (right when
    none), mismatches with the median of the nearest correct pixels in 16 directions; NaN where nothing is found.

    `border`: width of the left band where the disparity range is cut by the image edge (x < min_disp + max_disp - 1
    for a left reference). Occlusions there are caused by the edge, not by a foreground object, and the pixels to
    their left are no better matched, so they take the nearest correct pixel to their *right* (the KITTI devkit's
    extrapolation does the same). border=0 is the paper's rule everywhere.
    """
    d = np.asarray(disp, np.float32)
    lab = np.asarray(labels)
    if d.ndim != 2 or d.shape != lab.shape:
        raise StereoKitError(f"disparity {d.shape} and labels {lab.shape} must be 2-D of one shape")
    if lab.size and not np.isin(lab, (CORRECT, MISMATCH, OCCLUSION)).all():
        raise StereoKitError("labels must be those of lr_labels: 0 correct, 1 mismatch, 2 occlusion")
    border = check_number("border", border, integer=True)
    return _interpolate(d, lab.astype(np.uint8), _DIRS16, int(border))


@njit(cache=True, parallel=True)
def _subpixel(disp, vol, min_disp):
    H, W, D = vol.shape
    out = disp.copy()
    for y in prange(H):
        for x in range(W):
            d = disp[y, x]
            if not np.isfinite(d):
                continue
            k = int(np.rint(d)) - min_disp
            if k < 1 or k > D - 2:
                continue
            cm, c0, cp = vol[y, x, k - 1], vol[y, x, k], vol[y, x, k + 1]
            if not (np.isfinite(cm) and np.isfinite(c0) and np.isfinite(cp)):
                continue
            den = 2.0 * (cp - 2.0 * c0 + cm)
            if den > 0:
                off = (cp - cm) / den
                if -1.0 < off < 1.0:
                    out[y, x] = (k + min_disp) - off
    return out


def subpixel_parabola(disp: np.ndarray, cost_volume: np.ndarray, min_disp: int = 0) -> np.ndarray:
    """d - (C+ - C-) / (2 (C+ - 2 C + C-)) at the (rounded) disparity of each pixel (paper, sec. 3.3.4); pixels at
    the range's ends, next to +inf costs or at a non-convex triple keep their value."""
    d = np.asarray(disp, np.float32)
    vol = check_cost_volume(cost_volume, scan_values=True)
    if vol.shape[:2] != d.shape:
        raise StereoKitError(f"cost volume {vol.shape} does not match disparity {d.shape}")
    return _subpixel(d, vol, check_min_disp(min_disp))


@njit(cache=True, parallel=True)
def _tgauss(disp, kernel, r, t):
    H, W = disp.shape
    out = np.empty_like(disp)
    for y in prange(H):
        for x in range(W):
            c = disp[y, x]
            if not np.isfinite(c):
                out[y, x] = c
                continue
            s = 0.0
            wsum = 0.0
            for dy in range(-r, r + 1):
                yy = y + dy
                if yy < 0 or yy >= H:
                    continue
                for dx in range(-r, r + 1):
                    xx = x + dx
                    if xx < 0 or xx >= W:
                        continue
                    v = disp[yy, xx]
                    if abs(v - c) < t:  # False for NaN
                        w = kernel[dy + r, dx + r]
                        s += w * v
                        wsum += w
            out[y, x] = s / wsum
    return out


def thresholded_gaussian(disp: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    """MC-CNN's "bilateral" filter: mean of D(q) weighted by a Gaussian of |p - q| (radius ceil(3 sigma)) over the
    q with |D(p) - D(q)| < threshold (paper, sec. 3.3.5). NaN pixels stay NaN and are ignored by their neighbours."""
    d = np.asarray(disp, np.float32)
    if d.ndim != 2:
        raise StereoKitError(f"disparity must be 2-D, got shape {d.shape}")
    sigma = check_number("sigma", sigma, positive=True)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) or not threshold > 0:
        raise StereoKitError(f"threshold must be a positive number (inf: no threshold), got {threshold!r}")
    r = int(min(np.ceil(3 * sigma), max(d.shape)))  # a wider window adds no pixel
    if 2 * sigma * sigma == 0:  # a sigma so small that its square underflows weighs the centre alone, not 0 / 0
        r, kernel = 0, np.ones((1, 1))
    else:
        g = np.arange(-r, r + 1, dtype=np.float64)
        kernel = np.exp(-(g[:, None] ** 2 + g[None, :] ** 2) / (2 * sigma * sigma))
    # A threshold below float32's smallest step still admits equal disparities, the centre's own among them.
    t = max(np.float32(threshold), np.float32(np.finfo(np.float32).smallest_subnormal))
    return _tgauss(d, kernel, r, t).astype(np.float32)
