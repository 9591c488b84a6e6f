"""Matching costs and cost volumes.

A cost volume is float32 (H, W, D), lower is better; index k of the last axis is disparity ``min_disp + k`` and a
pixel whose match ``x - d`` falls outside the right image is ``+inf``. Every cost here produces that volume, so any
of them can feed winner-takes-all (:mod:`stereokit.disparity`), SGM (:mod:`stereokit.sgm`) and the same refinement.

Costs (``cost_volume(..., cost=NAME)``):

- ``"ad"`` / ``"sad"``: absolute difference of intensities (images scaled to [0, 1]); colour: **mean over the
  three channels**. ``"ad"`` is pixel-wise (window 1), ``"sad"`` its mean over a square window.
- ``"sd"`` / ``"ssd"``: squared difference, likewise (colour: mean over channels).
- ``"census"``: Hamming distance between census transforms (:func:`census_transform`, up to 64 bits in a uint64)
  of the gray (BT.601 luma) images; pixel-wise by default, or its mean over a square ``window``.
- ``"ncc"``: ``1 - ZNCC`` (zero-mean normalised cross-correlation) over a square window on the gray images; lies in
  [0, 2]; windows with no texture (zero variance) get cost 1 (correlation 0).

Window costs are *means* over the window (not sums), so their scale does not depend on the window size.
Aggregation is O(1) per cell whatever the window size: running sums down the columns and along the rows, fused with
the pixel cost in one Numba kernel (the pixel-cost volume is never stored). Windows are clamped at the image border
(border pixels replicated); only the *centre* match decides whether a cell is out of the image (+inf).
"""

from __future__ import annotations

import numbers
import re
import warnings

import numpy as np
from numba import njit, prange, types
from numba.core.errors import NumbaIRAssumptionWarning
from numba.extending import intrinsic, overload

from .errors import StereoKitError
from .pair import check_image, common_scale, to_float, to_gray

PIXEL_COSTS = ("ad", "sd", "census")
WINDOW_COSTS = ("sad", "ssd", "ncc", "census")
COSTS = ("ad", "sd", "census", "sad", "ssd", "ncc")
DEFAULT_WINDOW = {"ad": 1, "sd": 1, "census": 1, "sad": 9, "ssd": 9, "ncc": 9}
# Numba's pedantic SSA check flags the inlined `_pix` overload (a false alarm: results are checked against brute
# force in the tests); silence exactly that message, nothing else.
warnings.filterwarnings("ignore", message=r"variable '_pix_overload", category=NumbaIRAssumptionWarning)

# Kernel codes of the pixel costs.
_AD, _SD, _PRODUCT, _HAMMING = 0, 1, 2, 3
_KIND = {"ad": _AD, "sad": _AD, "sd": _SD, "ssd": _SD, "ncc": _PRODUCT, "census": _HAMMING}
MAX_CENSUS_BITS = 64


# --------------------------------------------------------------------------------------------------------------------
# Kernels


@intrinsic
def _popcount64(typingctx, x):
    """Population count of a uint64 (LLVM ctpop: one POPCNT instruction on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


def _pix(left, right, y, x, xr, kind):  # pragma: no cover - replaced by the overload inside Numba
    raise NotImplementedError


@overload(_pix, inline="always")
def _pix_overload(left, right, y, x, xr, kind):
    """Cost of matching left (y, x) with right (y, xr): Hamming for uint64 census images, else AD / SD / product."""
    if isinstance(left.dtype, types.Integer):

        def impl(left, right, y, x, xr, kind):
            return np.float32(_popcount64(left[y, x] ^ right[y, xr]))

        return impl

    def impl(left, right, y, x, xr, kind):  # float32 (H, W, C): mean over channels
        c = left.shape[2]
        s = np.float32(0.0)
        for ch in range(c):
            a = left[y, x, ch]
            b = right[y, xr, ch]
            diff = a - b
            s += abs(diff) if kind == 0 else (diff * diff if kind == 1 else a * b)
        return s / np.float32(c)

    return impl


@njit(parallel=True, cache=True)
def _pixel_volume(left, right, min_disp, num_disp, kind, out):
    h, w = left.shape[0], left.shape[1]
    inf = np.float32(np.inf)
    for y in prange(h):
        for x in range(w):
            # Valid k: 0 <= x - min_disp - k < w; the branch-free middle loop is the hot one.
            k0 = min(max(0, x - min_disp - w + 1), num_disp)
            k1 = max(min(num_disp, x - min_disp + 1), k0)
            for k in range(k0):
                out[y, x, k] = inf
            for k in range(k0, k1):
                out[y, x, k] = _pix(left, right, y, x, x - min_disp - k, kind)
            for k in range(k1, num_disp):
                out[y, x, k] = inf


ROWS_PER_BAND = 64  # rows per parallel band of the windowed costs (each band re-sums 2r+1 rows to start)


@njit(parallel=True, cache=True)
def _window_volume(left, right, pad, min_disp, num_disp, radius, kind, ncc_stats, nbands, out):
    """Mean pixel cost over a (2r+1)^2 window, by running sums (float64 accumulators, no drift).

    `left` / `right` are padded by `pad` >= r replicated columns on each side, so that every window pairs
    L[clamp(x')] with R[clamp(x' - d)] exactly as replicate-border box filters do (which the NCC statistics use).
    Rows are split into bands, one running column sum `acc` (padded W, D) per band; each output row is the
    horizontal running sum of `acc`. With kind == product, `ncc_stats` (4, H, W) = mean L, var L, mean R, var R
    turns the mean product into 1 - ZNCC.
    """
    h, wp = left.shape[0], left.shape[1]
    w = out.shape[1]
    r = radius
    n = float((2 * r + 1) * (2 * r + 1))
    inf = np.float32(np.inf)
    nbands = min(h, nbands)
    for band in prange(nbands):
        y0 = band * h // nbands
        y1 = (band + 1) * h // nbands
        acc = np.zeros((wp, num_disp), dtype=np.float64)
        # Column sums for row y0 - 1 (window rows y0-1-r .. y0-1+r, clamped).
        for yy in range(y0 - 1 - r, y0 + r):
            yc = min(max(yy, 0), h - 1)
            for xp in range(wp):
                for k in range(num_disp):
                    xr = min(max(xp - min_disp - k, 0), wp - 1)
                    acc[xp, k] += _pix(left, right, yc, xp, xr, kind)
        hsum = np.empty(num_disp, dtype=np.float64)
        for y in range(y0, y1):
            ya = min(y + r, h - 1)
            ys = min(max(y - r - 1, 0), h - 1)
            for xp in range(wp):
                for k in range(num_disp):
                    xr = min(max(xp - min_disp - k, 0), wp - 1)
                    acc[xp, k] += _pix(left, right, ya, xp, xr, kind) - _pix(left, right, ys, xp, xr, kind)
            # Horizontal running sum: output x covers padded columns x + pad - r .. x + pad + r.
            hsum[:] = 0.0
            for xp in range(pad - r, pad + r):
                for k in range(num_disp):
                    hsum[k] += acc[xp, k]
            for x in range(w):
                xa = x + pad + r
                for k in range(num_disp):
                    hsum[k] += acc[xa, k]
                for k in range(num_disp):
                    xr = x - min_disp - k
                    if xr < 0 or xr >= w:
                        out[y, x, k] = inf
                    elif kind == 2:
                        cov = hsum[k] / n - ncc_stats[0, y, x] * ncc_stats[2, y, xr]
                        den = np.sqrt(ncc_stats[1, y, x] * ncc_stats[3, y, xr])
                        # clamped to [0, 2]: rounding can put |ZNCC| a hair above 1
                        zncc_cost = min(max(1.0 - cov / den, 0.0), 2.0) if den > 1e-12 else 1.0
                        out[y, x, k] = np.float32(zncc_cost)
                    else:
                        out[y, x, k] = np.float32(hsum[k] / n)
                xs = x + pad - r
                for k in range(num_disp):
                    hsum[k] -= acc[xs, k]


@njit(parallel=True, cache=True)
def _hamming_counts(left, right, min_disp, num_disp, out, hi):
    """`_pixel_volume` for uint64 census images, written as uint8 counts (exact: at most 64 bits) with 255 in the
    out-of-image cells; hi[y, x]: the pixel's largest valid count when it has out-of-image cells (0 if it has no
    valid one), else 255 (what `sgm._prepare` finds on the float32 volume, for SGM's int16 kernel)."""
    h, w = left.shape
    invalid = np.uint8(255)
    for y in prange(h):
        # the right row reversed, so that a pixel's matches x - min_disp - k are contiguous in k (vectorises)
        rev = right[y, ::-1].copy()
        for x in range(w):
            k0 = min(max(0, x - min_disp - w + 1), num_disp)
            k1 = max(min(num_disp, x - min_disp + 1), k0)
            a = left[y, x]
            o = out[y, x]
            base = w - 1 - x + min_disp  # rev[base + k] = right[y, x - min_disp - k]
            for k in range(k0):
                o[k] = invalid
            for k in range(k0, k1):
                o[k] = np.uint8(_popcount64(a ^ rev[base + k]))
            for k in range(k1, num_disp):
                o[k] = invalid
            if k0 > 0 or k1 < num_disp:
                m = np.uint8(0)
                for k in range(k0, k1):
                    m = max(m, o[k])
                hi[y, x] = m
            else:
                hi[y, x] = invalid


def census_counts(left: np.ndarray, right: np.ndarray, max_disp: int, min_disp: int = 0,
                  census_window: int | tuple[int, int] = (9, 7)) -> tuple[np.ndarray, np.ndarray]:
    """Internal fast path: ``cost_volume(..., cost="census")`` as uint8 (H, W, D) counts with 255 instead of +inf
    (a quarter of the float32 volume's memory), plus the per-pixel table hi (uint8 (H, W)) that `stereokit.sgm`
    needs; same values otherwise (tested)."""
    left_f, right_f = _as_pair(left, right)
    from .validation import check_disparity_range

    min_disp, num_disp = check_disparity_range(left_f.shape[1], max_disp, min_disp)
    a = census_transform(left_f, census_window)
    b = census_transform(right_f, census_window)
    h, w = a.shape
    out = np.empty((h, w, num_disp), dtype=np.uint8)
    hi = np.empty((h, w), dtype=np.uint8)
    _hamming_counts(a, b, min_disp, num_disp, out, hi)
    return out, hi


@njit(parallel=True, cache=True)
def _census_kernel(padded, hh, hw):
    """Census of the interior of an image padded by (hh, hw) replicated pixels; row-wise so the loop vectorises."""
    h = padded.shape[0] - 2 * hh
    w = padded.shape[1] - 2 * hw
    out = np.empty((h, w), dtype=np.uint64)
    one = np.uint64(1)
    zero = np.uint64(0)
    for y in prange(h):
        v = np.zeros(w, dtype=np.uint64)
        centre = padded[y + hh, hw : hw + w]
        for dy in range(2 * hh + 1):
            for dx in range(2 * hw + 1):
                if dy == hh and dx == hw:
                    continue
                row = padded[y + dy, dx : dx + w]
                for x in range(w):
                    v[x] = (v[x] << one) | (one if row[x] < centre[x] else zero)
        out[y] = v
    return out


@njit(parallel=True, cache=True)
def _hamming_kernel(a, b, out):
    h, w = a.shape
    for y in prange(h):
        for x in range(w):
            out[y, x] = _popcount64(a[y, x] ^ b[y, x])


# --------------------------------------------------------------------------------------------------------------------
# Public API


def _window_size(window, name: str, shape: tuple[int, ...] | None = None) -> tuple[int, int]:
    """(width, height) of an odd window given as an int, a (width, height) pair or a "WxH" string (CLI); with the
    image's `shape`, a radius beyond the image (which could only add replicated border pixels) is refused."""
    bad = f"{name} must be an odd integer, a (width, height) pair or a string like 9 or 9x7, got {window!r}"
    if isinstance(window, str):
        # fullmatch: int() alone would take "3_3" as 33, " 9" or "+9" as 9
        if not re.fullmatch(r"[0-9]+(x[0-9]+)?", window.lower()):
            raise StereoKitError(bad)
        window = tuple(int(p) for p in window.lower().split("x"))
    sides = [window] if isinstance(window, (numbers.Number, np.generic)) else window
    try:
        sides = list(sides)
    except TypeError:
        raise StereoKitError(bad) from None
    if len(sides) == 1:
        sides = sides * 2
    # whole floats (9.0) pass, as for every integer option; 3.5 or True would be truncated or mistaken silently
    if len(sides) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                  and float(v).is_integer() for v in sides):
        raise StereoKitError(bad)
    ww, wh = (int(v) for v in sides)
    if ww < 1 or wh < 1 or ww % 2 == 0 or wh % 2 == 0:
        raise StereoKitError(f"{name} sides must be odd positive integers, got {window!r}")
    if shape is not None and (ww > 2 * shape[1] + 1 or wh > 2 * shape[0] + 1):
        raise StereoKitError(f"{name} {ww}x{wh} has a radius beyond the {shape[1]}x{shape[0]} image (it could only "
                             f"add replicated border pixels): at most {2 * shape[1] + 1} wide and {2 * shape[0] + 1} "
                             "tall")
    return ww, wh


def _as_image(img: np.ndarray, which: str, scale: float | None = None, any_range: bool = False) -> np.ndarray:
    """Checked float32 image; `any_range` keeps floats as given (for transforms that only use intensity order)."""
    img = check_image(img, which, any_range)
    if any_range and np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float32)
    return to_float(img, scale, which)


def _as_pair(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float32 in [0, 1] on one scale (`stereokit.pair.full_scale`), same size."""
    left, right = np.asarray(left), np.asarray(right)
    scale = common_scale(left, right)
    left_f, right_f = _as_image(left, "left", scale), _as_image(right, "right", scale)
    if left_f.shape[:2] != right_f.shape[:2]:
        raise StereoKitError(f"left and right images differ in size: {left_f.shape[:2]} vs {right_f.shape[:2]}")
    return left_f, right_f


def census_transform(image: np.ndarray, window: int | tuple[int, int] = (9, 7)) -> np.ndarray:
    """Census transform: per pixel, one bit per window neighbour, set where the neighbour is darker than the centre.

    `window` is an odd int (square) or an odd (width, height); at most 64 neighbours (9x7 gives 62 bits). Colour
    images are converted to gray (BT.601 luma). Border pixels are replicated. Returns uint64 (H, W); only the order
    of intensities matters, so the transform is invariant to any strictly increasing change of intensities.
    """
    ww, wh = _window_size(window, "census window")
    if ww * wh - 1 > MAX_CENSUS_BITS:
        raise StereoKitError(f"census window {ww}x{wh} has {ww * wh - 1} neighbours; at most {MAX_CENSUS_BITS} fit")
    img = _as_image(image, "census input", any_range=True)
    hh, hw = wh // 2, ww // 2
    padded = np.pad(to_gray(img), ((hh, hh), (hw, hw)), mode="edge")
    return _census_kernel(np.ascontiguousarray(padded, dtype=np.float32), hh, hw)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance between two uint64 (H, W) census images, as uint64."""
    a, b = np.asarray(a), np.asarray(b)
    for name, arr in (("a", a), ("b", b)):
        if arr.dtype.kind != "u":  # a cast from float or signed ints would invent bits
            raise StereoKitError(f"hamming needs unsigned integer census codes, {name} is {arr.dtype}")
    a = np.ascontiguousarray(a, dtype=np.uint64)
    b = np.ascontiguousarray(b, dtype=np.uint64)
    if a.shape != b.shape or a.ndim != 2:
        raise StereoKitError(f"hamming needs two 2-D arrays of one shape, got {a.shape} and {b.shape}")
    out = np.empty(a.shape, dtype=np.uint64)
    _hamming_kernel(a, b, out)
    return out


def cost_volume(
    left: np.ndarray,
    right: np.ndarray,
    max_disp: int,
    min_disp: int = 0,
    cost: str = "census",
    window: int | None = None,
    census_window: int | tuple[int, int] = (9, 7),
) -> np.ndarray:
    """Cost volume float32 (H, W, max_disp) of `left` against `right` for disparities [min_disp, min_disp+max_disp).

    `cost` is one of ``ad, sd, census`` (pixel-wise by default) or ``sad, ssd, ncc`` (window 9 by default); `window`
    (odd int) sets the square aggregation window of any cost (mean over the window; 1 = pixel-wise; ``ncc`` needs at
    least 3). `census_window` is the census transform's window. Images: uint8, uint16 or float, gray or RGB (see the
    module docstring for how colour is used). Cells whose centre match falls outside the right image are +inf.
    """
    if not isinstance(cost, str) or cost not in _KIND:
        raise StereoKitError(f"unknown cost {cost!r}; choose one of {', '.join(COSTS)}")
    left_f, right_f = _as_pair(left, right)
    from .validation import check_disparity_range

    min_disp, num_disp = check_disparity_range(left_f.shape[1], max_disp, min_disp)
    window = DEFAULT_WINDOW[cost] if window is None else window
    ww, wh = _window_size(window, "window", left_f.shape)
    if ww != wh:
        raise StereoKitError(f"the aggregation window must be square, got {window!r}")
    radius = ww // 2
    kind = _KIND[cost]
    if kind == _PRODUCT and radius < 1:
        raise StereoKitError("ncc needs a window of at least 3")

    h, w = left_f.shape[:2]
    out = np.empty((h, w, num_disp), dtype=np.float32)
    stats = np.zeros((4, 1, 1), dtype=np.float64)
    if kind == _HAMMING:
        a = census_transform(left_f, census_window)
        b = census_transform(right_f, census_window)
    elif kind == _PRODUCT:
        # NCC on gray; subtracting each image's global mean changes nothing in ZNCC but keeps the sums small.
        lg, rg = to_gray(left_f), to_gray(right_f)
        # float64 operands: the products are exact and summed in float64 like the statistics they are compared
        # with; float32 products (relative error 6e-8) made 1 - ZNCC of a flat window beside texture, whose
        # variance is rounding noise (~1e-17), anything from -4 to 6 instead of 1.
        a = np.ascontiguousarray((lg - lg.mean()).astype(np.float32)[:, :, None], dtype=np.float64)
        b = np.ascontiguousarray((rg - rg.mean()).astype(np.float32)[:, :, None], dtype=np.float64)
        stats = np.empty((4, h, w), dtype=np.float64)
        for i, img in enumerate((a[:, :, 0], b[:, :, 0])):
            img64 = img.astype(np.float64)
            mean = _box_mean(img64, ww)
            stats[2 * i] = mean
            stats[2 * i + 1] = np.maximum(_box_mean(img64 * img64, ww) - mean * mean, 0.0)
    else:
        a = left_f if left_f.ndim == 3 else left_f[:, :, None]
        b = right_f if right_f.ndim == 3 else right_f[:, :, None]
        if a.shape[2] != b.shape[2]:
            a, b = to_gray(left_f)[:, :, None], to_gray(right_f)[:, :, None]
        a, b = np.ascontiguousarray(a, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32)
    if radius == 0:
        _pixel_volume(a, b, min_disp, num_disp, kind, out)
    else:
        pad = radius
        widths = ((0, 0), (pad, pad)) + ((0, 0),) * (a.ndim - 2)
        a_p = np.pad(a, widths, mode="edge")
        b_p = np.pad(b, widths, mode="edge")
        # Bands follow the image height, not the thread count: each band restarts its float64 running sums, so a
        # thread-dependent split would change the last bits of the costs between machines.
        _window_volume(a_p, b_p, pad, min_disp, num_disp, radius, kind, stats, max(1, a.shape[0] // ROWS_PER_BAND), out)
    return out


def _box_mean(img: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window with replicated borders (matches the clamping of the volume kernels)."""
    import cv2

    return cv2.boxFilter(img, cv2.CV_64F, (size, size), normalize=True, borderType=cv2.BORDER_REPLICATE)
