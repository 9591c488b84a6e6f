"""Fused block matching: SAD / SSD window costs streamed straight into winner-takes-all, as OpenCV's StereoBM does.

:func:`block_match` gives the same disparity as ::

    disparity_with_lr_check(cost_volume(left, right, max_disp, min_disp, cost="sad" | "ssd", window=window), ...)

(up to floating-point ties) without materialising the (H, W, D) volume. Per band of rows (prange): running column
sums of the pixel costs along y (one (W + 2r, D) array per band) and a running sum along x give one output row of
window costs at a time; on that row, laid out (D, W), elementwise minima along x give the left winner, the right
view's winner (same costs, ``C_right(xr, d) = C(xr + d, d)``) and the second best away from the winner's two
neighbours (uniqueness), then the subpixel fit and the left-right check (:func:`stereokit.disparity._lr_consistent`).
The decisions are those of :func:`stereokit.disparity._wta_pixel` (smallest disparity on ties, the uniqueness limit
``best * 100 / (100 - uniqueness)`` ignoring the best's neighbours, subpixel only with both neighbours valid): on the
exact integer costs the result is identical (tests/test_blockmatch.py); against the float32 volume it differs only
where that volume's rounding breaks a tie. Memory: O(W * D) per band instead of H * W * D.

Integer images only (uint8 / uint16, gray or RGB): the costs are exact integer window *sums* over the channels
(``sum_ch |L - R|`` or its square), proportional to the volume path's means over channels and window, so the
winner, the uniqueness test and the subpixel offsets (ratios of cost differences) are the same. The sums are held
in float32 while they are exactly representable (below 2**24: e.g. uint8 SSD RGB up to 9x9, uint16 SAD RGB up to
9x9), float64 otherwise; float32 rather than int32 because Numba promotes small-integer arithmetic to int64, which
halves the SIMD width, whereas float32 lanes stay 8 wide on AVX2 and are exact on integers.

Why the volume path (:func:`stereokit.cost.cost_volume`) does not reuse this kernel: it takes any float image
(where float32 running sums drift, hence its float64 accumulators), serves NCC and census through the same loop,
and must write every cell of the volume that SGM and the other consumers need; this kernel writes none.
Borders are handled exactly as there: windows clamped (replicated rows and columns; left and right columns clamped
independently, ``L[clamp(x')]`` against ``R[clamp(x' - d)]``), and only the centre match ``x - d`` decides whether a
disparity is inside the right image.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .cost import _window_size
from .disparity import _lr_consistent, _subpixel_delta, _wta_options
from .errors import StereoKitError
from .validation import check_disparity_range, check_number

__all__ = ["block_match", "block_match_supported"]

_EXACT_FLOAT32 = 2**24  # every integer below this is a float32


@njit(cache=True, inline="always")
def _pc(d, squared):
    return d * d if squared else abs(d)


@njit(cache=True, inline="always")
def _add_rows(left, rrev, y_add, y_sub, base0, squared, scale, colsum):
    """colsum[u, k] += scale * (cost(y_add, u, k) - cost(y_sub, u, k)) (y_sub < 0: nothing subtracted), summed over
    the channels.

    cost(y, u, k) pairs left padded column u with the reversed right row at ``base0 - u + k``: contiguous in k, so
    the inner loop vectorises. RGB with a row to subtract (the hot case) reads and writes each column sum once.
    """
    nc = left.shape[0]
    wp, nd = colsum.shape
    for u in range(wp):
        base = base0 - u
        cs = colsum[u]
        if nc == 3 and y_sub >= 0:
            a0 = left[0, y_add, u]
            a1 = left[1, y_add, u]
            a2 = left[2, y_add, u]
            b0 = left[0, y_sub, u]
            b1 = left[1, y_sub, u]
            b2 = left[2, y_sub, u]
            ra0 = rrev[0, y_add, base : base + nd]
            ra1 = rrev[1, y_add, base : base + nd]
            ra2 = rrev[2, y_add, base : base + nd]
            rb0 = rrev[0, y_sub, base : base + nd]
            rb1 = rrev[1, y_sub, base : base + nd]
            rb2 = rrev[2, y_sub, base : base + nd]
            for k in range(nd):
                cs[k] += (_pc(a0 - ra0[k], squared) + _pc(a1 - ra1[k], squared) + _pc(a2 - ra2[k], squared)
                          - _pc(b0 - rb0[k], squared) - _pc(b1 - rb1[k], squared) - _pc(b2 - rb2[k], squared)) * scale
            continue
        for ch in range(nc):
            a = left[ch, y_add, u]
            ra = rrev[ch, y_add, base : base + nd]
            if y_sub >= 0:
                b = left[ch, y_sub, u]
                rb = rrev[ch, y_sub, base : base + nd]
                for k in range(nd):
                    cs[k] += (_pc(a - ra[k], squared) - _pc(b - rb[k], squared)) * scale
            else:
                for k in range(nd):
                    cs[k] += _pc(a - ra[k], squared) * scale


@njit(cache=True, parallel=True)
def _block_match_kernel(left, rrev, bits_proto, base0, w, min_disp, nd, r, squared, subpixel, uniqueness,
                        lr_threshold, nbands, out_left, out_right):
    """Rows in `nbands` bands (prange); per band one (W + 2r, D) array of running column sums.

    Costs are carried as keys ``K * cost + k`` (K the power of two >= D; exact integers in the array's float type,
    checked by the caller): the lowest key is the lowest cost at the smallest disparity (the volume path's tie
    rule), so every arg-minimum is a plain minimum. Per row the keys are laid out (D, W) and the minima run along
    x, elementwise over whole rows, on the keys' integer view (`bits_proto`: an empty array of the integer type as
    wide as the float type; non-negative floats order as their bits, and LLVM vectorises integer minima without
    the no-NaN attributes that float ones would need): no per-pixel reductions with short, varying trip counts.
    """
    h = left.shape[1]
    wp = w + 2 * r
    inf = np.inf
    kpow = 1
    while kpow < nd:
        kpow *= 2
    kmask = kpow - 1
    one = np.empty(1, dtype=left.dtype)  # K in the array's float type (an int would promote to float64)
    one[0] = kpow
    scale = one[0]
    one[0] = inf
    inf_bits = one.view(bits_proto.dtype)[0]
    factor = np.float32(100.0 / (100.0 - uniqueness) if uniqueness > 0 else 1.0)
    for band in prange(nbands):
        y0 = band * h // nbands
        y1 = (band + 1) * h // nbands
        colsum = np.zeros((wp, nd), dtype=left.dtype)
        key = np.empty(nd, dtype=left.dtype)
        kf = np.empty(nd, dtype=left.dtype)
        for k in range(nd):
            kf[k] = k
        rowk = np.empty((nd, w), dtype=left.dtype)  # keys of one output row, disparity-major
        rowb = rowk.view(bits_proto.dtype)
        best = np.empty(w, dtype=left.dtype)
        bestb = best.view(bits_proto.dtype)
        second = np.empty(w, dtype=left.dtype)
        secondb = second.view(bits_proto.dtype)
        rbest = np.empty(w, dtype=left.dtype)
        rbestb = rbest.view(bits_proto.dtype)
        kbest = np.empty(w, dtype=left.dtype)  # the best's disparity index, as a float (same lane width)
        # Column sums of the window of row y0 - 1 (rows y0-1-r .. y0-1+r, clamped).
        for yy in range(y0 - 1 - r, y0 + r):
            _add_rows(left, rrev, min(max(yy, 0), h - 1), -1, base0, squared, scale, colsum)
        for y in range(y0, y1):
            ya = min(y + r, h - 1)
            ys = max(y - r - 1, 0)
            if ya != ys:
                _add_rows(left, rrev, ya, ys, base0, squared, scale, colsum)
            # Horizontal running sums (vectorised over k); window of x: padded columns x .. x + 2r.
            key[:] = kf
            for u in range(2 * r + 1):
                for k in range(nd):
                    key[k] += colsum[u, k]
            for x in range(w):
                if x > 0:
                    for k in range(nd):
                        key[k] += colsum[x + 2 * r, k] - colsum[x - 1, k]
                for k in range(nd):  # a strided store: kept out of the vectorised loop above
                    rowk[k, x] = key[k]
            # +inf where the match x - min_disp - k falls outside the right image, as in the volume.
            for k in range(nd):
                xa = min(max(min_disp + k, 0), w)
                xb = max(min(w + min_disp + k, w), xa)
                rowk[k, :xa] = inf
                rowk[k, xb:] = inf
            # Left best and right best (C_right(xr, k) = C(xr + min_disp + k, k)), elementwise minima along x.
            bestb[:] = rowb[0]
            rbestb[:] = inf_bits
            for k in range(nd):
                rk = rowb[k]
                if k > 0:
                    for x in range(w):
                        v = rk[x]
                        b = bestb[x]
                        bestb[x] = v if v < b else b
                s = min_disp + k
                lo = min(max(0, -s), w)
                hi = max(min(w, w - s), lo)
                src = rk[lo + s : hi + s]  # slices: the loop index stays non-negative, so it vectorises
                dst = rbestb[lo:hi]
                for i in range(hi - lo):
                    v = src[i]
                    b = dst[i]
                    dst[i] = v if v < b else b
            if uniqueness > 0:
                # Second best away from the best's two neighbours.
                for x in range(w):
                    kbest[x] = (int(best[x]) & kmask) if best[x] < inf else -2 * nd
                secondb[:] = inf_bits
                for k in range(nd):
                    rk = rowb[k]
                    kk = kf[k]
                    for x in range(w):
                        v = rk[x] if abs(kk - kbest[x]) > 1.5 else inf_bits
                        b = secondb[x]
                        secondb[x] = v if v < b else b
            for x in range(w):
                b = best[x]
                if not b < inf:
                    out_left[y, x] = np.float32(np.nan)
                    continue
                kb = int(b) & kmask
                bc = b - kf[kb]  # K * cost: K is a power of two, so K * cost * factor rounds as cost * factor
                if uniqueness > 0:
                    s2 = second[x]
                    s2c = s2 - kf[int(s2) & kmask]
                    if s2 < inf and (s2c < bc * factor or s2c == bc):  # a tie is ambiguous, as in _wta_pixel
                        out_left[y, x] = np.float32(np.nan)
                        continue
                delta = 0.0
                if subpixel > 0 and 0 < kb < nd - 1:
                    cm = rowk[kb - 1, x]
                    cp = rowk[kb + 1, x]
                    if cm < inf and cp < inf:
                        delta = _subpixel_delta(cm - kf[kb - 1], bc, cp - kf[kb + 1], subpixel)
                out_left[y, x] = np.float32(min_disp + kb + delta)
            for xr in range(w):
                rk = rbest[xr]
                out_right[y, xr] = np.float32(min_disp + (int(rk) & kmask)) if rk < inf else np.float32(np.nan)
            if lr_threshold >= 0:
                for x in range(w):
                    d = out_left[y, x]
                    if not np.isnan(d) and not _lr_consistent(x, d, out_right[y], lr_threshold):
                        out_left[y, x] = np.float32(np.nan)


def block_match_supported(left: np.ndarray, right: np.ndarray) -> bool:
    """True when :func:`block_match` takes these images: uint8 or uint16, one dtype, gray or RGB of one shape."""
    left, right = np.asarray(left), np.asarray(right)
    return (left.dtype == right.dtype and left.dtype in (np.uint8, np.uint16) and left.shape == right.shape
            and (left.ndim == 2 or (left.ndim == 3 and left.shape[2] in (1, 3))) and left.size > 0)


def block_match(
    left: np.ndarray,
    right: np.ndarray,
    max_disp: int,
    min_disp: int = 0,
    *,
    window: int | tuple[int, int] | str = 7,
    squared: bool = False,
    subpixel: str | None = "equiangular",
    uniqueness: float = 0.0,
    lr_threshold: float | None = 1.0,
) -> np.ndarray:
    """Left disparity float32 (H, W), NaN invalid, by SAD (``squared=False``) or SSD over a square `window`.

    Same result as ``disparity_with_lr_check(cost_volume(left, right, max_disp, min_disp, cost="sad" or "ssd",
    window=window), min_disp, subpixel, uniqueness, lr_threshold)`` (``winner_takes_all`` when `lr_threshold` is
    None) up to floating-point ties, in one streaming pass: no (H, W, D) volume. `left` / `right`: uint8 or uint16,
    gray or RGB (the cost sums over the channels, proportional to the volume path's mean).
    """
    if not block_match_supported(left, right):
        raise StereoKitError("block_match needs two non-empty uint8 or uint16 images of one shape and dtype, gray or "
                             f"RGB; got {np.asarray(left).dtype} {np.shape(left)} and {np.asarray(right).dtype} "
                             f"{np.shape(right)}")
    subpixel_code = _wta_options(subpixel, uniqueness)  # the checks winner_takes_all applies
    if lr_threshold is not None:
        lr_threshold = check_number("the left-right threshold (px)", lr_threshold)
    ww, wh = _window_size(window, "window", np.shape(left))
    if ww != wh:
        raise StereoKitError(f"the aggregation window must be square, got {window!r}")
    h, w = left.shape[:2]
    min_disp, nd = check_disparity_range(w, max_disp, min_disp)
    r = ww // 2
    nc = 1 if left.ndim == 2 else left.shape[2]
    # Largest key any running sum reaches (a full window: a row or column enters and leaves in one expression), from
    # the images' actual range; below 2**24 float32 holds every key exactly, else float64 (exact to 2**53).
    lo_v = min(int(left.min()), int(right.min()))
    span = max(int(left.max()), int(right.max())) - lo_v
    kpow = 1 << max(nd - 1, 0).bit_length()
    bound = (2 * r + 1) ** 2 * nc * (span * span if squared else span) * kpow + kpow
    dtype = np.float32 if bound < _EXACT_FLOAT32 else np.float64

    # Planar (C, H, columns) copies. Left: columns x = -r .. w-1+r (replicated). Right: every column x' - d the
    # windows reach, x' in [-r, w+r), d in [min_disp, min_disp+nd), replicated, stored right to left so that the
    # disparity loop reads it forwards.
    left3 = left.reshape(h, w, nc)
    right3 = right.reshape(h, w, nc)
    xl = np.clip(np.arange(-r, w + r), 0, w - 1)
    lo = -r - (min_disp + nd - 1)
    hi = w - 1 + r - min_disp
    xr = np.clip(np.arange(hi, lo - 1, -1), 0, w - 1)
    lp = np.ascontiguousarray(np.take(left3, xl, axis=1).transpose(2, 0, 1), dtype=dtype)
    rrev = np.ascontiguousarray(np.take(right3, xr, axis=1).transpose(2, 0, 1), dtype=dtype)
    # Padded column u (x = u - r) at disparity index k reads right column u - r - min_disp - k, i.e. reversed
    # index hi - (u - r - min_disp - k) = base0 - u + k.
    base0 = hi + r + min_disp

    out_left = np.empty((h, w), dtype=np.float32)
    out_right = np.empty((h, w), dtype=np.float32)
    nbands = max(1, min(h, 2 * numba.get_num_threads()))  # each band re-reads 2r rows to start its sums
    thr = -1.0 if lr_threshold is None else float(lr_threshold)
    bits_proto = np.empty(0, dtype=np.int32 if dtype == np.float32 else np.int64)
    _block_match_kernel(lp, rrev, bits_proto, base0, w, min_disp, nd, r, bool(squared), subpixel_code,
                        float(uniqueness), thr, nbands, out_left, out_right)
    return out_left
