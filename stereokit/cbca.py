"""Cross-based cost aggregation (Zhang, Lu & Lafruit 2009), as used by MC-CNN (Zbontar & LeCun, JMLR 2016 §3.3.1).

Crosses: every pixel p gets four arms (left, right, up, down). An arm grows from p pixel by pixel while the
intensity difference to p stays below `tau1` and the distance below `L1`; the immediate neighbour is always
included (MC-CNN's `cross` kernel, adcensus.cu), so an arm is at least one pixel long inside the image and
at most L1 - 1 pixels long. With an arm ending at (exclusive) coordinates, a pixel's horizontal support is the
open interval between its left and right ends.

Support region for disparity d (MC-CNN): the intersection of the left image's cross at p and the right image's
cross at p - d, i.e. the vertical arm is the intersection of both vertical arms, and each row q on it
contributes the intersection of q's horizontal arm (left image) with (q - d)'s horizontal arm (right image,
shifted back by d). The aggregated cost is the mean of the costs over that region,

    C_i(p, d) = 1 / |U_d(p)| * sum_{q in U_d(p)} C_{i-1}(q, d),

repeated `iterations` times with the same crosses. Computed exactly with running sums: one horizontal pass
(row prefix sums: the sum over each row's arm) and one vertical pass (column prefix sums of those), O(1) per
cell whatever L1. Entries whose match p - d lies outside the right image are returned unchanged (+inf in the
cost-volume convention). Other +inf entries (if a cost marks more as invalid) are left out of the sums and
counts; a region without any finite cost keeps the original value.

Peak memory: the float32 output plus a float32 and an int16 temporary of the same size (2.5 x H*W*D float32
besides the input) and O((H + W) * D) per thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .validation import check_cost_volume, check_guide_image, check_min_disp, check_number

__all__ = ["cross_arms", "cross_based_aggregation"]

_INF = np.float32(np.inf)
# Far beyond any useful smoothing (the paper uses at most 16); a slip such as 1e12 would otherwise run for ever.
MAX_ITERATIONS = 1000


@njit(cache=True, parallel=True)
def _arms_kernel(img, L1, tau1, out):
    """out[0..3, y, x]: exclusive ends of the left, right (x coordinates), up, down (y coordinates) arms."""
    H, W = img.shape
    for y in prange(H):
        for x in range(W):
            v = img[y, x]
            for k in range(4):
                dx = -1 if k == 0 else (1 if k == 1 else 0)
                dy = -1 if k == 2 else (1 if k == 3 else 0)
                xx = x + dx
                yy = y + dy
                while 0 <= xx < W and 0 <= yy < H:
                    dist = max(abs(xx - x), abs(yy - y))
                    if dist > 1:
                        if abs(img[yy, xx] - v) >= tau1 or dist >= L1:
                            break
                    xx += dx
                    yy += dy
                out[k, y, x] = xx if k < 2 else yy


@njit(cache=True, parallel=True)
def _horizontal(src, armL, armR, min_disp, hs, hn):
    """hs, hn[y, x, d]: sum and count of the finite costs on the intersected horizontal arm of (y, x) at d."""
    H, W, D = src.shape
    for y in prange(H):
        S = np.zeros((W + 1, D), np.float64)
        N = np.zeros((W + 1, D), np.int32)
        for x in range(W):
            for d in range(D):
                v = src[y, x, d]
                fin = v != _INF
                S[x + 1, d] = S[x, d] + (np.float64(v) if fin else 0.0)
                N[x + 1, d] = N[x, d] + fin
        for x in range(W):
            lo_l = armL[0, y, x]
            hi_l = armL[1, y, x]
            for d in range(D):
                disp = min_disp + d
                xr = x - disp
                if xr < 0 or xr >= W:
                    hs[y, x, d] = 0.0
                    hn[y, x, d] = 0
                    continue
                a = max(lo_l, armR[0, y, xr] + disp)  # exclusive ends, in left-image coordinates
                b = min(hi_l, armR[1, y, xr] + disp)
                hs[y, x, d] = np.float32(S[b, d] - S[a + 1, d])
                hn[y, x, d] = N[b, d] - N[a + 1, d]


@njit(cache=True, parallel=True)
def _vertical(src, armL, armR, min_disp, hs, hn, out):
    """out[y, x, d] = mean over the intersected vertical arm of the horizontal sums (out may be src)."""
    H, W, D = src.shape
    for x in prange(W):
        S = np.zeros((H + 1, D), np.float64)
        N = np.zeros((H + 1, D), np.int64)
        for y in range(H):
            for d in range(D):
                S[y + 1, d] = S[y, d] + hs[y, x, d]
                N[y + 1, d] = N[y, d] + hn[y, x, d]
        for y in range(H):
            lo_l = armL[2, y, x]
            hi_l = armL[3, y, x]
            for d in range(D):
                xr = x - (min_disp + d)
                if xr < 0 or xr >= W:
                    out[y, x, d] = src[y, x, d]
                    continue
                a = max(lo_l, armR[2, y, xr])
                b = min(hi_l, armR[3, y, xr])
                n = N[b, d] - N[a + 1, d]
                if n > 0:
                    out[y, x, d] = np.float32((S[b, d] - S[a + 1, d]) / n)
                else:
                    out[y, x, d] = src[y, x, d]


def _check_params(L1, tau1) -> tuple[int, np.float32]:
    # as every option: integral floats such as 5.0 pass, strings such as "0.1" do not
    return check_number("L1 (arm length limit)", L1, integer=True), np.float32(check_number("tau1", tau1))


def cross_arms(image: np.ndarray, L1: int, tau1: float) -> np.ndarray:
    """Arms of every pixel's cross: int32 (4, H, W) exclusive end coordinates (left x, right x, up y, down y).

    An arm extends while |I(q) - I(p)| < tau1 and the distance |q - p| < L1, the immediate neighbour always
    included; so pixel p's horizontal support is x in (left, right), its vertical support y in (up, down).
    `image`: gray (H, W) or RGB (luma taken), any numeric dtype, in the units of tau1.
    """
    img = check_guide_image("image", image)
    L1, tau1 = _check_params(L1, tau1)
    out = np.empty((4,) + img.shape, np.int32)
    _arms_kernel(img, L1, tau1, out)
    return out


def cross_based_aggregation(cost_volume: np.ndarray, left: np.ndarray, right: np.ndarray, L1: int, tau1: float,
                            iterations: int = 1, *, min_disp: int = 0) -> np.ndarray:
    """MC-CNN's cross-based cost aggregation; returns float32 (H, W, D), `iterations` times averaged.

    cost_volume: float32 (H, W, D), index k = disparity min_disp + k, +inf where p - d leaves the right image
    (kept as is). left, right: the images the crosses are built on (MC-CNN: gray, each normalised to zero mean
    and unit variance, with tau1 in those units: Middlebury acrt L1 = 14, tau1 = 0.02; KITTI 2015 acrt
    L1 = 5, tau1 = 0.03). iterations: 0 returns a copy; at most MAX_ITERATIONS (1000).
    """
    vol = check_cost_volume(cost_volume, scan_values=True)
    H, W, D = vol.shape
    lft = check_guide_image("left", left, (H, W))
    rgt = check_guide_image("right", right, (H, W))
    L1, tau1 = _check_params(L1, tau1)
    iterations = check_number("iterations", iterations, integer=True, maximum=MAX_ITERATIONS)
    min_disp = check_min_disp(min_disp)
    out = vol.copy()  # check_cost_volume gave float32, C-contiguous
    if iterations == 0:
        return out
    armL = np.empty((4, H, W), np.int32)
    armR = np.empty((4, H, W), np.int32)
    _arms_kernel(lft, L1, tau1, armL)
    _arms_kernel(rgt, L1, tau1, armR)
    hs = np.empty((H, W, D), np.float32)
    hn = np.empty((H, W, D), np.int16 if W < 32767 else np.int32)  # a horizontal arm holds at most W pixels
    for _ in range(int(iterations)):
        _horizontal(out, armL, armR, int(min_disp), hs, hn)
        _vertical(out, armL, armR, int(min_disp), hs, hn, out)
    return out
