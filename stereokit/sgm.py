"""Semi-Global Matching (Hirschmueller 2008) on any cost volume, in Numba.

One recurrence, used by every variant::

    L_r(p, d) = C(p, d) + min(L_r(p-r, d),
                              L_r(p-r, d-1) + P1, L_r(p-r, d+1) + P1,
                              min_k L_r(p-r, k) + P2) - min_k L_r(p-r, k)

summed over the paths r. Three ways of choosing the penalties:

* constant `P1`, `P2` (`sgm(...)`);
* `P2` adapted to the guide image along the path (`sgm(..., guide=img)`):
  ``P2' = max(P1, P2 / (1 + |I(p) - I(p-r)| / p2_gamma))`` (Hirschmueller's intensity-adaptive P2, softened
  by the `+1` so a flat region keeps the full P2);
* MC-CNN's scheme (`sgm_mccnn(...)`, Zbontar & LeCun JMLR 2016 sec. 3.3.2 and their `adcensus.cu`): with
  ``D1 = |I_L(p) - I_L(p-r)|`` and ``D2 = |I_R(p-d) - I_R(p-d-r)|`` (right image at the matched position, so
  per disparity), P1 and P2 are divided by 1 when both are below `D`, by `Q1` when exactly one is at or above `D`,
  by `Q2` when both are (MC-CNN's tables give sgm_Q2 = q1 * q2: pass the product). P1 is further divided by `V`
  on vertical paths. A right-image position outside the image counts as "above" (as in adcensus.cu). The
  paper averages the paths, so `sgm_mccnn` returns the mean over paths, `sgm` the sum.

Paths: 4 (horizontal, vertical), 8 (+ diagonals) or 16 (+ the 8 knight moves (+-1, +-2), (+-2, +-1)).

Invalid costs: +inf entries (match outside the right image) are replaced, inside the kernel, by the largest finite
cost of the same pixel (0 when the pixel has none), i.e. "no better than the worst valid disparity", so they
neither attract nor block the paths. The output is +inf wherever the input was +inf, so a winner-takes-all
never picks them. NaN or -inf costs raise `StereoKitError`.

Arithmetic: when the costs are integers in [0, lim] and P1, P2 integers (census and other counting costs), the
kernel works in exact int16 (16 SIMD lanes), lim = 32767 // (paths / 2) - P2 so that a sweep's sums cannot
overflow (e.g. 8 paths: max cost + P2 <= 8191); with `guide`, P2' is then rounded to the nearest integer.
Otherwise it works in float32 (MC-CNN's scheme always does). Both give the same result as the float64
reference of the recurrence for integer data (tested).

Implementation: the paths are split into a forward sweep (rows top to bottom, left to right: the directions whose
predecessor is above or to the left) and a backward sweep (the mirror), run in parallel (two threads). Each
sweep updates all its directions in one loop over d per pixel (D innermost and contiguous), keeping three rows
of path costs per direction. A first parallel pass validates the volume (NaN/-inf, integer check) and finds
each pixel's largest finite cost. Peak memory besides the input (tracemalloc, see benchmarks/bench_sgm.py):
int16 arithmetic **1 x H*W*D float32**: both sweeps' int16 sums live in the output's own bytes (pixel p's 4*D
bytes hold 2 x D int16) and are widened in place; float32 arithmetic **2 x H*W*D float32** (output + the
backward sweep's sums). Plus O(paths * W * D) row buffers and O(H * W) per-pixel tables; no per-path volumes.

The `sgm` matcher goes through `sgm_census_disparity`: census counts in uint8 (no float32 cost volume, no
validation pass) and, after the sweeps, each row of the aggregated volume is built in a row buffer from the two
sweeps' sums and taken at once to winner-takes-all, the right view's disparity and the left-right check: the
aggregated volume is never written (same disparity as the public composition, tested).
"""

from __future__ import annotations

import numbers

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .disparity import _left_disparity, _lr_consistent, _wta_finish, _wta_options
from .errors import StereoKitError
from .validation import check_cost_volume, check_guide_image, check_min_disp, check_number

__all__ = ["sgm", "sgm_mccnn", "scaled_penalties", "cost_scale", "path_directions"]

# No 'nnan'/'ninf': the kernel inspects inf/NaN itself. No 'reassoc': sums keep their order.
_FASTMATH = {"nsz", "arcp", "contract", "afn"}
_BIG = np.float32(1.0e38)  # float padding beyond the disparity range: finite so BIG + P1 never becomes inf
_IBIG = np.int16(16384)  # int16 padding: above any path cost (<= 16383) and BIG + P1 <= 32767
_INT16_SUM = 32767  # int16 sweep sums: (directions per sweep) * (max cost + P2) must stay below this
_INF = np.float32(np.inf)

_FORWARD = {
    4: [(1, 0), (0, 1)],
    8: [(1, 0), (1, 1), (0, 1), (-1, 1)],
    16: [(1, 0), (1, 1), (0, 1), (-1, 1), (2, 1), (1, 2), (-1, 2), (-2, 1)],
}


def path_directions(paths: int) -> list[tuple[int, int]]:
    """The path steps r = (dx, dy) for 4, 8 or 16 paths (predecessor of p is p - r)."""
    fwd = _FORWARD[_check_paths(paths)]
    return fwd + [(-dx, -dy) for dx, dy in fwd]


# ----------------------------------------------------------------------------------------------------- kernel
#
# One sweep function implements the recurrence for every penalty mode and both arithmetics; the dtype-specific
# pieces (loading a cost vector, the path steps, storing the sums) are overloaded on the buffer dtype: int16
# (exact for integer costs, 16 lanes per AVX2 instruction) or float32 (8 lanes).
# Performance notes (measured on the 741x500x64 volume): helpers are inlined at Numba IR level (a real call
# costs more than a 64-disparity step); the predecessors' path costs are copied into a private array before a
# step, without which LLVM's vectorised loop is not taken (aliasing within the row buffer; 4-6x slower); the
# directions of a sweep are updated together in one loop over d (c read once, one store of the sum: 1.4x);
# a path entering the image is a step from an all-zero predecessor (no special case); Numba does not
# vectorise float min-reductions, so the float kernel takes minima over an int32 view (non-negative IEEE floats
# order like their bit patterns), with a scalar loop only for pixels with negative costs.


def _load(crow, x, h, c, mask):
    """Load crow[x] (a row of the volume) into c (int16 or float32) with +inf replaced by h; mask marks +inf."""


def _step4(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
    """Path step for the 4 directions k0..k0+3 from predecessors P[k]: buf[k, ry, x] = L_k(p);
    acc = (acc if add else 0) + sum_k L_k(p); mins[k, ry, x] = min_d L_k(p, d)."""


def _step2(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
    """As _step4 for 2 directions."""


def _mccnn_steps(P, c, acc, buf, bufi, mins, minsi, pm, x, y, ry, sgn, dxs, dys, left, right, min_disp, thr, ptab,
                 above_r, p1d, p2d, nonneg):
    """All directions' steps at pixel (y, x) with MC-CNN's per-disparity penalties (float32 only).

    ptab[k, 0 or 1, n]: P1 or P2 of direction k when n (0, 1, 2) of the intensity differences reach D;
    above_r[k, xr]: the right-image difference at column xr of this row reaches D (per row, see _sweep)."""


def _store(srow, x, acc, mask):
    """srow[x] = acc, with the invalid marker where the cost was +inf (-1 for int16, +inf for float32)."""


def _combine_row(fwd, bwd, row, y, scale):
    """row[x, d] = (forward + backward sums of pixel (y, x)) * scale, +inf where the cost was +inf; `row` may be
    the output volume's row y itself."""


def _as_pen(v, like):
    """Penalty v in the arithmetic of `like` (rounded to the nearest integer for int16)."""


def _big(like):
    """Padding beyond the disparity range: above any path cost, and BIG + P1 must not overflow."""


def _intview(a):
    """int32 view of a float32 array (for min-reductions on non-negative floats), the array itself otherwise."""


def _is_int16(t) -> bool:
    return getattr(t, "dtype", None) == types.int16


def _int16_sums(a):
    """True (a compile-time constant) when the sweep sums `a` are int16."""


@overload(_int16_sums, inline="always")
def _ov_int16_sums(a):
    flag = _is_int16(a)
    return lambda a: flag


@overload(_intview, inline="always")
def _ov_intview(a):
    if a.dtype == types.float32:
        return lambda a: a.view(np.int32)
    return lambda a: a


@overload(_big, inline="always")
def _ov_big(like):
    if isinstance(like, types.Integer):
        return lambda like: _IBIG
    return lambda like: _BIG


@overload(_as_pen, inline="always")
def _ov_as_pen(v, like):
    if isinstance(like, types.Integer):
        return lambda v, like: np.int16(np.floor(v + 0.5))
    return lambda v, like: np.float32(v)


@overload(_load, inline="always")
def _ov_load(crow, x, h, c, mask):
    # h: the pixel's largest finite cost when it has +inf entries, else +inf (set by _prepare); every finite
    # cost is <= h, so min(v, h) replaces exactly the +inf entries. mask: -1 (int16) or +inf (float32) there,
    # else 0, so that _store marks them with a branch-free `acc | mask` or `acc + mask`.
    if _is_int16(c):

        def impl(crow, x, h, c, mask):
            for d in range(c.shape[0]):
                v = crow[x, d]
                m = v > h
                mask[d] = np.int16(-1) if m else np.int16(0)
                c[d] = np.int16(h if m else v)

        return impl

    def impl(crow, x, h, c, mask):
        for d in range(c.shape[0]):
            v = crow[x, d]
            m = v > h
            mask[d] = _INF if m else np.float32(0.0)
            c[d] = h if m else v

    return impl


@njit(fastmath=_FASTMATH, inline="always")
def _store_fmin(cur, curi, mins, minsi, k, ry, x, nonneg):
    D = cur.shape[0] - 2
    if nonneg:
        mi = np.int32(0x7F800000)
        for d in range(D):
            mi = min(mi, curi[d + 1])
        minsi[k, ry, x] = mi
    else:
        m = _BIG
        for d in range(D):
            v = cur[d + 1]
            if v < m:
                m = v
        mins[k, ry, x] = m


@overload(_step4, inline="always")
def _ov_step4(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
    if _is_int16(c):

        def impl(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
            cur0 = buf[k0, ry, x]
            cur1 = buf[k0 + 1, ry, x]
            cur2 = buf[k0 + 2, ry, x]
            cur3 = buf[k0 + 3, ry, x]
            e0, e1, e2, e3 = e[k0], e[k0 + 1], e[k0 + 2], e[k0 + 3]
            q0, q1, q2, q3 = pm[k0], pm[k0 + 1], pm[k0 + 2], pm[k0 + 3]
            m0 = m1 = m2 = m3 = _IBIG
            for d in range(c.shape[0]):
                cd = c[d]
                v0 = np.int16(cd + np.int16(min(min(P[k0, d + 1], e0), np.int16(min(P[k0, d], P[k0, d + 2]) + p1)) - q0))
                v1 = np.int16(cd + np.int16(min(min(P[k0 + 1, d + 1], e1), np.int16(min(P[k0 + 1, d], P[k0 + 1, d + 2]) + p1)) - q1))
                v2 = np.int16(cd + np.int16(min(min(P[k0 + 2, d + 1], e2), np.int16(min(P[k0 + 2, d], P[k0 + 2, d + 2]) + p1)) - q2))
                v3 = np.int16(cd + np.int16(min(min(P[k0 + 3, d + 1], e3), np.int16(min(P[k0 + 3, d], P[k0 + 3, d + 2]) + p1)) - q3))
                cur0[d + 1] = v0
                cur1[d + 1] = v1
                cur2[d + 1] = v2
                cur3[d + 1] = v3
                acc[d] = np.int16(np.int16(acc[d] * add) + np.int16(np.int16(v0 + v1) + np.int16(v2 + v3)))
                m0 = min(m0, v0)
                m1 = min(m1, v1)
                m2 = min(m2, v2)
                m3 = min(m3, v3)
            mins[k0, ry, x] = m0
            mins[k0 + 1, ry, x] = m1
            mins[k0 + 2, ry, x] = m2
            mins[k0 + 3, ry, x] = m3

        return impl

    def impl(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
        cur0 = buf[k0, ry, x]
        cur1 = buf[k0 + 1, ry, x]
        cur2 = buf[k0 + 2, ry, x]
        cur3 = buf[k0 + 3, ry, x]
        e0, e1, e2, e3 = e[k0], e[k0 + 1], e[k0 + 2], e[k0 + 3]
        q0, q1, q2, q3 = pm[k0], pm[k0 + 1], pm[k0 + 2], pm[k0 + 3]
        for d in range(c.shape[0]):
            cd = c[d]
            v0 = cd + (min(min(P[k0, d + 1], e0), min(P[k0, d], P[k0, d + 2]) + p1) - q0)
            v1 = cd + (min(min(P[k0 + 1, d + 1], e1), min(P[k0 + 1, d], P[k0 + 1, d + 2]) + p1) - q1)
            v2 = cd + (min(min(P[k0 + 2, d + 1], e2), min(P[k0 + 2, d], P[k0 + 2, d + 2]) + p1) - q2)
            v3 = cd + (min(min(P[k0 + 3, d + 1], e3), min(P[k0 + 3, d], P[k0 + 3, d + 2]) + p1) - q3)
            cur0[d + 1] = v0
            cur1[d + 1] = v1
            cur2[d + 1] = v2
            cur3[d + 1] = v3
            acc[d] = (acc[d] if add else np.float32(0.0)) + ((v0 + v1) + (v2 + v3))
        for j in range(4):
            _store_fmin(buf[k0 + j, ry, x], bufi[k0 + j, ry, x], mins, minsi, k0 + j, ry, x, nonneg)

    return impl


@overload(_step2, inline="always")
def _ov_step2(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
    if _is_int16(c):

        def impl(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
            cur0 = buf[k0, ry, x]
            cur1 = buf[k0 + 1, ry, x]
            e0, e1 = e[k0], e[k0 + 1]
            q0, q1 = pm[k0], pm[k0 + 1]
            m0 = m1 = _IBIG
            for d in range(c.shape[0]):
                cd = c[d]
                v0 = np.int16(cd + np.int16(min(min(P[k0, d + 1], e0), np.int16(min(P[k0, d], P[k0, d + 2]) + p1)) - q0))
                v1 = np.int16(cd + np.int16(min(min(P[k0 + 1, d + 1], e1), np.int16(min(P[k0 + 1, d], P[k0 + 1, d + 2]) + p1)) - q1))
                cur0[d + 1] = v0
                cur1[d + 1] = v1
                acc[d] = np.int16(np.int16(acc[d] * add) + np.int16(v0 + v1))
                m0 = min(m0, v0)
                m1 = min(m1, v1)
            mins[k0, ry, x] = m0
            mins[k0 + 1, ry, x] = m1

        return impl

    def impl(P, k0, c, acc, add, buf, bufi, mins, minsi, ry, x, p1, e, pm, nonneg):
        cur0 = buf[k0, ry, x]
        cur1 = buf[k0 + 1, ry, x]
        e0, e1 = e[k0], e[k0 + 1]
        q0, q1 = pm[k0], pm[k0 + 1]
        for d in range(c.shape[0]):
            cd = c[d]
            v0 = cd + (min(min(P[k0, d + 1], e0), min(P[k0, d], P[k0, d + 2]) + p1) - q0)
            v1 = cd + (min(min(P[k0 + 1, d + 1], e1), min(P[k0 + 1, d], P[k0 + 1, d + 2]) + p1) - q1)
            cur0[d + 1] = v0
            cur1[d + 1] = v1
            acc[d] = (acc[d] if add else np.float32(0.0)) + (v0 + v1)
        for j in range(2):
            _store_fmin(buf[k0 + j, ry, x], bufi[k0 + j, ry, x], mins, minsi, k0 + j, ry, x, nonneg)

    return impl


@njit(fastmath=_FASTMATH, inline="always")
def _step_vec(prev, cur, curi, c, acc, p1d, p2d, pm, mins, minsi, k, ry, x, nonneg):
    """One direction's step with per-disparity penalties (MC-CNN, float32); acc += L."""
    for d in range(c.shape[0]):
        l_ = min(min(prev[d + 1], pm + p2d[d]), min(prev[d], prev[d + 2]) + p1d[d])
        v = c[d] + (l_ - pm)
        cur[d + 1] = v
        acc[d] += v
    _store_fmin(cur, curi, mins, minsi, k, ry, x, nonneg)


@overload(_mccnn_steps, inline="always")
def _ov_mccnn_steps(P, c, acc, buf, bufi, mins, minsi, pm, x, y, ry, sgn, dxs, dys, left, right, min_disp, thr, ptab,
                    above_r, p1d, p2d, nonneg):
    if _is_int16(c):  # MC-CNN's penalties are never run in int16: compile nothing for it

        def noop(P, c, acc, buf, bufi, mins, minsi, pm, x, y, ry, sgn, dxs, dys, left, right, min_disp, thr, ptab,
                 above_r, p1d, p2d, nonneg):
            pass

        return noop

    def impl(P, c, acc, buf, bufi, mins, minsi, pm, x, y, ry, sgn, dxs, dys, left, right, min_disp, thr, ptab,
             above_r, p1d, p2d, nonneg):
        H, W = left.shape
        D = c.shape[0]
        for d in range(D):
            acc[d] = np.float32(0.0)
        for k in range(dxs.shape[0]):
            px = x - sgn * dxs[k]
            py = y - sgn * dys[k]
            # D1 on the left image; at a path start (predecessor outside) the penalties are unused
            d1 = 0
            if px >= 0 and px < W and py >= 0 and py < H and abs(left[y, x] - left[py, px]) >= thr:
                d1 = 1
            for d in range(D):
                xr = x - (min_disp + d)  # matched position in the right image; above_r[k, xr] holds its D2 test
                n = d1 + (1 if (xr < 0 or xr >= W) else above_r[k, xr])
                p1d[d] = ptab[k, 0, n]
                p2d[d] = ptab[k, 1, n]
            _step_vec(P[k], buf[k, ry, x], bufi[k, ry, x], c, acc, p1d, p2d, pm[k], mins, minsi, k, ry, x, nonneg)

    return impl


@overload(_store, inline="always")
def _ov_store(srow, x, acc, mask):
    if _is_int16(srow):

        def impl(srow, x, acc, mask):
            for d in range(acc.shape[0]):
                srow[x, d] = acc[d] | mask[d]

        return impl

    def impl(srow, x, acc, mask):
        for d in range(acc.shape[0]):
            srow[x, d] = acc[d] + mask[d]

    return impl


@overload(_combine_row, inline="always")
def _ov_combine_row(fwd, bwd, row, y, scale):
    if _is_int16(fwd):
        # fwd is bwd: the (H, W, 2, D) int16 view of the output volume, which `row` may be part of; go through a
        # temporary per pixel
        def impl(fwd, bwd, row, y, scale):
            D = row.shape[1]
            tmp = np.empty(D, np.float32)
            for x in range(row.shape[0]):
                for d in range(D):
                    f = fwd[y, x, 0, d]
                    v = (np.float32(f) + np.float32(bwd[y, x, 1, d])) * scale
                    tmp[d] = _INF if f < 0 else v
                for d in range(D):
                    row[x, d] = tmp[d]

        return impl

    def impl(fwd, bwd, row, y, scale):
        for x in range(row.shape[0]):
            for d in range(row.shape[1]):
                row[x, d] = (fwd[y, x, 0, d] + bwd[y, x, 0, d]) * scale

    return impl


@njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _sweep(cost, hi, nonneg_map, sums, s, backward, dxs, dys, P1, P2, mode, guide, gamma_inv, left, right,
           min_disp, thr, Q1, Q2, V):
    """One sweep over the image, summing the L_r of its directions into sums[:, :, s] (int16 or float32).

    Forward: rows top to bottom, each left to right, directions (dxs, dys) (2, 4 or 8 of them, dys >= 0);
    backward: the mirror. mode 0: constant penalties; 1: adaptive P2 from `guide`; 2: MC-CNN penalties from
    `left`/`right`. hi, nonneg_map: per-pixel results of `_prepare`.
    """
    H, W, D = cost.shape
    nd = dxs.shape[0]
    sgn = -1 if backward else 1
    big = _big(P1)
    zero = _as_pen(0.0, P1)
    one = _as_pen(1.0, P1)
    # Path costs of the last 3 rows (knight moves reach 2 rows back), padded at d = -1 and d = D.
    buf = np.empty((nd, 3, W, D + 2), sums.dtype)
    buf[:, :, :, 0] = big
    buf[:, :, :, D + 1] = big
    mins = np.empty((nd, 3, W), sums.dtype)
    bufi = _intview(buf)
    minsi = _intview(mins)
    P = np.empty((nd, D + 2), sums.dtype)  # private copies of the predecessors' path costs
    pm = np.empty(nd, sums.dtype)
    e = np.empty(nd, sums.dtype)
    c = np.empty(D, sums.dtype)
    acc = np.empty(D, sums.dtype)
    mask = np.empty(D, sums.dtype)
    p1d = np.empty(D, np.float32)
    p2d = np.empty(D, np.float32)
    # MC-CNN: penalties by number of differences reaching D, and per row the right image's test by column
    # (D2 = |R(p-d) - R(p-d-r)| depends on x and d only through the column x - d)
    ptab = np.empty((nd, 2, 3), np.float32)
    above_r = np.zeros((nd, W), np.int64)
    if mode == 2:
        for k in range(nd):
            for n in range(3):
                div = np.float32(1.0) if n == 0 else (Q1 if n == 1 else Q2)
                p1 = np.float32(P1) / div
                ptab[k, 0, n] = p1 / V if dxs[k] == 0 else p1
                ptab[k, 1, n] = np.float32(P2) / div
    slots = np.empty(3, np.int64)
    p2row = np.empty((nd, W), sums.dtype)  # P2 per direction along the row (adaptive: one vectorised pass)
    # The row's costs and sums go through row buffers, copied in ascending memory order: the pixel loop runs
    # right to left in the backward sweep, and streaming the volume backwards made that sweep 1.6x slower.
    crow = np.empty((W, D), cost.dtype)
    srow = np.empty((W, D), sums.dtype)
    p2row[:, :] = P2
    for yi in range(H):
        y = H - 1 - yi if backward else yi
        for j in range(3):
            slots[j] = (y - sgn * j) % 3  # ring-buffer slot of row y - sgn * j
        ry = slots[0]
        for x in range(W):
            for d in range(D):
                crow[x, d] = cost[y, x, d]
        if mode == 2:
            for k in range(nd):
                dx = sgn * dxs[k]
                py = y - sgn * dys[k]
                for xr in range(W):
                    xq = xr - dx
                    if py < 0 or py >= H or xq < 0 or xq >= W:
                        above_r[k, xr] = 1  # outside the right image counts as "above" (adcensus.cu)
                    else:
                        above_r[k, xr] = 1 if abs(right[y, xr] - right[py, xq]) >= thr else 0
        if mode == 1:
            for k in range(nd):
                py = min(max(y - sgn * dys[k], 0), H - 1)  # clamped: border values are not used
                for x in range(W):
                    px = min(max(x - sgn * dxs[k], 0), W - 1)
                    g = abs(guide[y, x] - guide[py, px])
                    p2row[k, x] = _as_pen(max(np.float32(P1), np.float32(P2) / (np.float32(1.0) + g * gamma_inv)), P2)
        for xi in range(W):
            x = W - 1 - xi if backward else xi
            _load(crow, x, hi[y, x], c, mask)
            nonneg = nonneg_map[y, x]
            for k in range(nd):
                px = x - sgn * dxs[k]
                py = y - sgn * dys[k]
                if px < 0 or px >= W or py < 0 or py >= H:
                    # the path enters the image here: a step from an all-zero predecessor gives L_r = C
                    for d in range(1, D + 1):
                        P[k, d] = zero
                    P[k, 0] = big
                    P[k, D + 1] = big
                    pm[k] = zero
                else:
                    pr = slots[dys[k]]
                    for d in range(D + 2):
                        P[k, d] = buf[k, pr, px, d]
                    pm[k] = mins[k, pr, px]
                e[k] = pm[k] + p2row[k, x]
            if mode == 2:
                _mccnn_steps(P, c, acc, buf, bufi, mins, minsi, pm, x, y, ry, sgn, dxs, dys, left, right, min_disp, thr,
                             ptab, above_r, p1d, p2d, nonneg)
            elif nd == 2:
                _step2(P, 0, c, acc, zero, buf, bufi, mins, minsi, ry, x, P1, e, pm, nonneg)
            else:
                for k0 in range(0, nd, 4):
                    _step4(P, k0, c, acc, zero if k0 == 0 else one, buf, bufi, mins, minsi, ry, x, P1, e, pm, nonneg)
            _store(srow, x, acc, mask)
        for x in range(W):
            for d in range(D):
                sums[y, x, s, d] = srow[x, d]


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _prepare(cost, hi, nonneg, lim):
    """Validate the volume and tabulate per pixel what the sweeps need.

    hi[y, x]: the largest finite cost of the pixel if it has +inf entries, else +inf (0 if it has no finite
    cost); nonneg[y, x]: all its costs >= 0. Returns (number of NaN/-inf, number of finite costs that are not
    integers in [0, lim]; lim < 0 skips that check).
    """
    H, W, D = cost.shape
    nbad = np.zeros(H, np.int64)
    nfit = np.zeros(H, np.int64)
    limf = np.float32(lim)
    check_fit = lim >= 0
    for y in prange(H):
        b_ = np.int32(0)
        f_ = np.int32(0)
        for x in range(W):
            nneg = np.int32(0)
            ninf = np.int32(0)
            for d in range(D):
                v = cost[y, x, d]
                b_ += np.int32((v != v) | (v == -_INF))
                nneg += np.int32(v < 0)
                ninf += np.int32(v == _INF)
                f_ += np.int32(check_fit & (v != _INF) & ((v != np.floor(v)) | (v < 0) | (v > limf)))
            nonneg[y, x] = nneg == 0
            h = _INF
            if ninf:
                h = -_INF
                for d in range(D):
                    v = cost[y, x, d]
                    if v != _INF and v > h:
                        h = v
                if h == -_INF:
                    h = np.float32(0.0)
            hi[y, x] = h
        nbad[y] = b_
        nfit[y] = f_
    return nbad.sum(), nfit.sum()


_NOKEY = np.int32(0x7FFFFFFF)


@njit(fastmath=_FASTMATH, inline="always")
def _wta_row_int16(sums, y, row, key, rkey, kbest, min_disp, subpixel, uniqueness, lr_threshold, left_row,
                   right_row):
    """`disparity_with_lr_check` (or `winner_takes_all` when lr_threshold < 0) of row y of the volume whose costs
    are the int16 sweep sums sums[y, x, 0] + sums[y, x, 1] (sums[y, x, 0] < 0 where the cost is invalid), without
    that volume: the row is built in `row` (float32 (W, D), the costs as disparity.py sees them) while integer keys
    ``cost * D + k`` give each pixel's, and each right pixel's, lowest cost and, on ties, the smallest disparity
    with vectorised integer minima (Numba does not vectorise the float argmin loop of disparity.py); then the
    same uniqueness test, subpixel fit and left-right check as `stereokit.disparity`. Needs D * 65535 < 2**31."""
    W, D = row.shape
    factor = np.float32(100.0 / (100.0 - uniqueness) if uniqueness > 0 else 1.0)
    want_right = lr_threshold >= 0
    # C_right(xr, d) = C(xr + min_disp + d, d): pixel x's cost at d is right pixel xr = x - min_disp - d's. With
    # rkey[i] for xr = i - (D - 1) - min_disp and the keys stored by descending d (key[D - 1 - d]), pixel x updates
    # the contiguous rkey[x : x + D] with key[0 : D] (the reversed or strided forms do not vectorise).
    if want_right:
        rkey[:] = _NOKEY
    for x in range(W):
        km = _NOKEY
        for d in range(D):
            f = sums[y, x, 0, d]
            s = np.int32(f) + np.int32(sums[y, x, 1, d])
            row[x, d] = _INF if f < 0 else np.float32(s)
            k = _NOKEY if f < 0 else s * np.int32(D) + np.int32(d)
            key[D - 1 - d] = k
            km = min(km, k)
        kbest[x] = km
        if want_right:
            seg = rkey[x : x + D]
            for j in range(D):
                seg[j] = min(seg[j], key[j])
    if want_right:
        for xr in range(W):
            i = xr + D - 1 + min_disp
            k = rkey[i] if 0 <= i < rkey.shape[0] else _NOKEY
            right_row[xr] = np.float32(np.nan) if k == _NOKEY else np.float32(min_disp + k % D)
    for x in range(W):
        k = kbest[x]
        disp = np.float32(np.nan)
        if k != _NOKEY:
            disp = _wta_finish(row[x], k % D, min_disp, subpixel, uniqueness, factor)
            if want_right and not np.isnan(disp) and not _lr_consistent(x, disp, right_row, lr_threshold):
                disp = np.float32(np.nan)
        left_row[x] = disp


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _sgm_kernel(cost, hi, nonneg, fwd, bwd, sf, sb, out, dxs, dys, P1, P2, mode, guide, gamma_inv, left, right,
                min_disp, thr, Q1, Q2, V, scale, wta, disp_left, disp_right):
    """Forward and backward sweeps in parallel (sums in fwd[:, :, sf], bwd[:, :, sb]), then
    out = (forward + backward) * scale; or, for the int16 sums with scale 1, when wta = (True, min_disp, subpixel,
    uniqueness, lr_threshold), each row of that volume goes straight to `_wta_row_int16` (disp_left,
    disp_right) and the volume is never written."""
    for s in prange(2):
        if s == 0:
            _sweep(cost, hi, nonneg, fwd, sf, False, dxs, dys, P1, P2, mode, guide, gamma_inv, left, right,
                   min_disp, thr, Q1, Q2, V)
        else:
            _sweep(cost, hi, nonneg, bwd, sb, True, dxs, dys, P1, P2, mode, guide, gamma_inv, left, right,
                   min_disp, thr, Q1, Q2, V)
    H, W, D = cost.shape
    if _int16_sums(fwd) and wta[0]:
        # rows in blocks, one set of row buffers per block (fresh ones per row would cost their page faults)
        nblock = min(H, 64)
        for b in prange(nblock):
            row = np.empty((W, D), np.float32)
            key = np.empty(D, np.int32)
            rkey = np.empty(W + D - 1, np.int32)
            kbest = np.empty(W, np.int32)
            for y in range(b * H // nblock, (b + 1) * H // nblock):
                _wta_row_int16(fwd, y, row, key, rkey, kbest, wta[1], wta[2], wta[3], wta[4], disp_left[y],
                               disp_right[y])
    else:
        for y in prange(H):
            _combine_row(fwd, bwd, out[y], y, scale)


# ------------------------------------------------------------------------------------------------- validation


def _check_paths(paths) -> int:
    if isinstance(paths, bool) or not isinstance(paths, numbers.Integral) or int(paths) not in _FORWARD:
        raise StereoKitError(f"paths must be 4, 8 or 16, got {paths!r}")
    return int(paths)


_F32 = np.finfo(np.float32)


def check_penalty(name: str, value, positive: bool = False) -> float:
    """`value` checked for the kernels' float32 arithmetic: a number >= 0 (> 0 when `positive`) that float32 holds
    without overflowing to inf or, for a divisor (`positive`), flushing to zero (which crashes the kernel's division).
    Else StereoKitError naming `name`."""
    v = check_number(name, value, positive=positive, maximum=float(_F32.max))
    if positive and v < _F32.tiny:
        raise StereoKitError(f"{name} must be at least {float(_F32.tiny):.3g} (float32's smallest normal), "
                             f"got {value!r}")
    return v


def _check_penalty(name: str, value, positive: bool = False) -> np.float32:
    return np.float32(check_penalty(name, value, positive))


_EMPTY2 = np.zeros((1, 1), np.float32)
_EMPTY3 = np.zeros((1, 1, 1), np.float32)
_NO_WTA = (False, 0, 0, 0.0, -1.0)  # _sgm_kernel's `wta`: write the aggregated volume


def _int16_limit(paths: int, P1, P2, mode: int) -> int:
    """Largest cost the exact int16 arithmetic can take with these penalties; -1 when it cannot be used."""
    # sweep sums: (directions per sweep) * (max cost + P2) <= 32767
    lim = _INT16_SUM // len(_FORWARD[paths]) - int(np.ceil(P2))
    ok = mode != 2 and float(P1).is_integer() and float(P2).is_integer() and lim >= 0
    return lim if ok else -1


def _run(vol, paths, P1, P2, mode, guide, gamma_inv, left, right, min_disp, thr, Q1, Q2, V, scale):
    H, W, D = vol.shape
    lim = _int16_limit(paths, P1, P2, mode)
    hi = np.empty((H, W), np.float32)
    nonneg = np.empty((H, W), np.bool_)
    nbad, nfit = _prepare(vol, hi, nonneg, lim)
    if nbad:
        raise StereoKitError(f"cost volume contains {nbad} NaN or -inf values (only +inf may mark invalid costs)")
    pen = (mode, guide, np.float32(gamma_inv), left, right, int(min_disp), np.float32(thr), np.float32(Q1),
           np.float32(Q2), np.float32(V), np.float32(scale))
    if lim >= 0 and nfit == 0:
        return _aggregate_int16(vol, hi, nonneg, paths, P1, P2, pen)
    out = np.empty_like(vol)
    tmp = np.empty_like(vol)
    dxs, dys = _dirs(paths)
    _sgm_kernel(vol, hi, nonneg, out.reshape(H, W, 1, D), tmp.reshape(H, W, 1, D), 0, 0, out, dxs, dys,
                np.float32(P1), np.float32(P2), *pen, _NO_WTA, _EMPTY2, _EMPTY2)
    return out


def _dirs(paths: int):
    dirs = np.array(_FORWARD[paths], dtype=np.int64)
    return dirs[:, 0].copy(), dirs[:, 1].copy()


def _aggregate_int16(vol, hi, nonneg, paths, P1, P2, pen, wta=_NO_WTA):
    """The int16 kernel on a validated volume (float32 with +inf, or integer counts with a sentinel above every
    valid cost) and its per-pixel tables; returns float32 (H, W, D), +inf where the cost was invalid, or with `wta`
    (see _sgm_kernel) the left disparity (H, W) instead."""
    H, W, D = vol.shape
    dxs, dys = _dirs(paths)
    if wta[0]:
        # the sums alone: the aggregated volume never exists, only one row of it per thread
        scratch = np.empty((H, W, 2, D), np.int16)
        left = np.empty((H, W), np.float32)
        right = np.empty((H, W), np.float32)
        _sgm_kernel(vol, hi, nonneg, scratch, scratch, 0, 1, _EMPTY3, dxs, dys, np.int16(P1), np.int16(P2), *pen,
                    wta, left, right)
        return left
    out = np.empty((H, W, D), np.float32)
    # both sweeps' int16 sums live in the output's own memory: pixel p's 4*D bytes hold 2 x D int16
    scratch = out.view(np.int16).reshape(H, W, 2, D)
    _sgm_kernel(vol, hi, nonneg, scratch, scratch, 0, 1, out, dxs, dys, np.int16(P1), np.int16(P2), *pen, wta,
                _EMPTY2, _EMPTY2)
    return out


def sgm_census_disparity(volume: np.ndarray, hi: np.ndarray, max_cost: int, P1: float, P2: float, paths: int = 8, *,
                         guide: np.ndarray | None = None, p2_gamma: float = 8.0 / 255.0, min_disp: int = 0,
                         subpixel: str | None = "parabola", uniqueness: float = 0.0,
                         lr_threshold: float | None = 1.0) -> np.ndarray:
    """Internal fast path of the `sgm` matcher: the left disparity of
    ``disparity_with_lr_check(sgm(cost_volume(..., cost="census"), ...), min_disp, subpixel, uniqueness,
    lr_threshold)`` (`winner_takes_all` when lr_threshold is None) from the uint8 counts and table of
    `stereokit.cost.census_counts` (255 = out of the image), fused: no float32 cost volume, no validation pass
    (counts are exact integers), and each row of the aggregated volume goes from the sweeps' sums straight to
    winner-takes-all, so the aggregated volume is never written either. max_cost: an upper bound of the valid
    costs (the census bit count, below 255). Same output as that composition (tested), which it falls back to when
    the penalties do not allow int16 arithmetic."""
    paths = _check_paths(paths)
    p1 = _check_penalty("P1", P1)
    p2 = _check_penalty("P2", P2)
    if p2 < p1:
        raise StereoKitError(f"P2 ({P2}) must be >= P1 ({P1})")
    code = _wta_options(subpixel, uniqueness)
    lr = -1.0 if lr_threshold is None else check_number("the left-right threshold (px)", lr_threshold)
    min_disp = check_min_disp(min_disp)
    if volume.dtype != np.uint8 or not 0 <= max_cost < 255:
        raise StereoKitError(f"sgm_census_disparity takes census_counts' uint8 volume (counts below 255), got "
                             f"{volume.dtype} with max_cost {max_cost}")
    H, W, D = volume.shape
    if guide is None:
        mode, g, gamma_inv = 0, _EMPTY2, 0.0
    else:
        g = check_guide_image("guide", guide, (H, W))
        gamma_inv = 1.0 / _check_penalty("p2_gamma", p2_gamma, positive=True)
        mode = 1
    lim = _int16_limit(paths, p1, p2, mode)
    if lim < 0 or max_cost > lim or D * 65535 >= 2**31:  # the last: _wta_row_int16's int32 keys
        vol = np.where(volume == np.uint8(255), np.float32(np.inf), volume.astype(np.float32))
        agg = sgm(vol, P1, P2, paths, guide=guide, p2_gamma=p2_gamma)
        del vol
        return _left_disparity(agg, min_disp, subpixel, uniqueness, lr_threshold)
    nonneg = np.ones((H, W), np.bool_)
    pen = (mode, g, np.float32(gamma_inv), _EMPTY2, _EMPTY2, 0, np.float32(0.0), np.float32(1.0), np.float32(1.0),
           np.float32(1.0), np.float32(1.0))
    wta = (True, min_disp, code, float(uniqueness), float(lr))
    return _aggregate_int16(np.ascontiguousarray(volume), hi, nonneg, paths, p1, p2, pen, wta)


# ----------------------------------------------------------------------------------------------------- public


def sgm(cost_volume: np.ndarray, P1: float, P2: float, paths: int = 8, *, guide: np.ndarray | None = None,
        p2_gamma: float = 8.0 / 255.0) -> np.ndarray:
    """Aggregate a cost volume with Semi-Global Matching; returns float32 (H, W, D), the sum over `paths` paths.

    cost_volume: float32 (H, W, D), lower is better, +inf where the match leaves the right image (kept +inf in
    the output). P1, P2: penalties for a disparity change of 1 and of more than 1, in the cost's units
    (0 <= P1 <= P2; `scaled_penalties` expresses them relative to the volume's typical cost). paths: 4, 8 or 16.
    guide: optional (H, W) image (or RGB, converted to luma) making P2 adaptive:
    ``P2' = max(P1, P2 / (1 + |guide(p) - guide(p-r)| / p2_gamma))``; p2_gamma is in the guide's units
    (default 8/255 suits [0, 1] images such as `StereoPair.left_gray`; use 8 for 8-bit guides).
    Integer costs and penalties use exact int16 arithmetic (P2' then rounded to an integer), others float32.
    Peak memory besides the input: 1 x H*W*D float32 (int16 arithmetic) or 2 x (float32). See the module
    docstring.
    """
    vol = check_cost_volume(cost_volume)
    paths = _check_paths(paths)
    p1 = _check_penalty("P1", P1)
    p2 = _check_penalty("P2", P2)
    if p2 < p1:
        raise StereoKitError(f"P2 ({P2}) must be >= P1 ({P1})")
    if guide is None:
        mode, g, gamma_inv = 0, _EMPTY2, 0.0
    else:
        g = check_guide_image("guide", guide, vol.shape[:2])
        gamma_inv = 1.0 / _check_penalty("p2_gamma", p2_gamma, positive=True)
        mode = 1
    return _run(vol, paths, p1, p2, mode, g, gamma_inv, _EMPTY2, _EMPTY2, 0, 0.0, 1.0, 1.0, 1.0, 1.0)


def sgm_mccnn(cost_volume: np.ndarray, left: np.ndarray, right: np.ndarray, P1: float, P2: float, Q1: float,
              Q2: float, D: float, V: float, paths: int = 4, *, min_disp: int = 0) -> np.ndarray:
    """SGM with MC-CNN's penalty scheme (Zbontar & LeCun 2016, sec. 3.3.2); returns the *mean* over paths.

    left, right: the (H, W) images the intensity differences are taken on (MC-CNN: each normalised to zero mean
    and unit variance, as fed to the network), the cost volume's index k meaning disparity min_disp + k.
    P1 = sgm_P1, P2 = sgm_P2 (MC-CNN tables: P2 = pi1 * pi2, the absolute value), Q1 = sgm_Q1 (= q1),
    Q2 = sgm_Q2 (= q1 * q2, the divisor when both differences reach D), D = sgm_D (tau_so), V = sgm_V (alpha1),
    paths: 4 in the paper (8 and 16 allowed). Per path and pixel: D1 = |L(p) - L(p-r)|, D2 = |R(p-d) - R(p-d-r)|;
    both < D: (P1, P2); one >= D: (P1, P2) / Q1; both >= D: (P1, P2) / Q2; vertical paths: P1 / V as well.
    Notes on the authors' released code (jzbontar/mc-cnn, adcensus.cu `sgm2`): it applies V only to the transition
    where the disparity grows downwards, and its call passes `pi2` itself as P2 while the paper's tables (and the
    code's own printout `sgm_P2`) give pi1 * pi2; we follow the paper (V on all vertical transitions, P2 absolute,
    e.g. Middlebury fast P1 = 2.3, P2 = 55.9, Q1 = 4, Q2 = 8, D = 0.08, V = 1.5). Float32 arithmetic; peak memory
    2 x H*W*D float32.
    """
    vol = check_cost_volume(cost_volume)
    paths = _check_paths(paths)
    H, W, _ = vol.shape
    lft = check_guide_image("left", left, (H, W))
    rgt = check_guide_image("right", right, (H, W))
    p1 = _check_penalty("P1", P1)
    p2 = _check_penalty("P2", P2)
    if p2 < p1:
        raise StereoKitError(f"P2 ({P2}) must be >= P1 ({P1})")
    q1 = _check_penalty("Q1", Q1, positive=True)
    q2 = _check_penalty("Q2", Q2, positive=True)
    v = _check_penalty("V", V, positive=True)
    thr = _check_penalty("D", D)
    min_disp = check_min_disp(min_disp)
    scale = 1.0 / (2 * len(_FORWARD[paths]))
    return _run(vol, paths, p1, p2, 2, _EMPTY2, 0.0, lft, rgt, min_disp, thr, q1, q2, v, scale)


def cost_scale(cost_volume: np.ndarray, samples: int = 20000, seed: int = 0) -> float:
    """Typical cost contrast of a volume: median over sampled pixels of (mean - min) of the finite costs.

    Used to express SGM penalties independently of the cost's units (census bits, SAD grey levels, 1 - NCC, ...).
    """
    vol = check_cost_volume(cost_volume)
    samples = check_number("samples", samples, integer=True, positive=True)
    H, W, D = vol.shape
    rng = np.random.default_rng(seed)
    n = min(samples, H * W)
    idx = rng.choice(H * W, size=n, replace=False)
    v = vol.reshape(H * W, D)[idx].astype(np.float64)
    if np.isnan(v).any():
        raise StereoKitError("cost volume contains NaN")
    fin = np.isfinite(v)
    cnt = fin.sum(axis=1)
    ok = cnt > 0
    if not ok.any():
        raise StereoKitError("cost volume has no finite cost")
    vz = np.where(fin, v, 0.0)
    mean = vz.sum(axis=1)[ok] / cnt[ok]
    mn = np.where(fin, v, np.inf).min(axis=1)[ok]
    s = float(np.median(mean - mn))
    return s if s > 0 else 1.0


def scaled_penalties(cost_volume: np.ndarray, p1: float = 0.1, p2: float = 1.0) -> tuple[float, float]:
    """(P1, P2) = (p1, p2) x `cost_scale(cost_volume)`: penalties relative to the volume's typical cost."""
    s = cost_scale(cost_volume)
    return float(p1) * s, float(p2) * s
