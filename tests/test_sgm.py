"""SGM kernel against a plain NumPy reference of the same recurrence, and input validation."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.sgm import cost_scale, path_directions, scaled_penalties, sgm, sgm_mccnn


def reference_sgm(cost, P1, P2, paths=8, guide=None, p2_gamma=1.0, mccnn=None, average=False, round_p2=False):
    """Textbook SGM in float64, one direction at a time (slow; tiny volumes only).

    mccnn: dict(left, right, Q1, Q2, D, V, min_disp) for MC-CNN's penalty scheme. round_p2: the adaptive P2
    rounded to the nearest integer (what sgm does when costs and penalties are integers).
    """
    cost = np.asarray(cost, np.float64)
    H, W, Dn = cost.shape
    inf = np.isinf(cost)
    c = cost.copy()
    fin_max = np.where(inf, -np.inf, c).max(axis=2, keepdims=True)
    fin_max = np.where(np.isfinite(fin_max), fin_max, 0.0)
    c = np.where(inf, fin_max, c)
    total = np.zeros_like(c)
    dirs = path_directions(paths)
    for dx, dy in dirs:
        L = np.zeros_like(c)
        ys = range(H) if (dy > 0 or (dy == 0 and dx > 0)) else range(H - 1, -1, -1)
        xs = list(range(W)) if dx >= 0 else list(range(W - 1, -1, -1))
        for y in ys:
            for x in xs:
                px, py = x - dx, y - dy
                if not (0 <= px < W and 0 <= py < H):
                    L[y, x] = c[y, x]
                    continue
                prev = L[py, px]
                pm = prev.min()
                p1 = np.full(Dn, float(P1))
                p2 = np.full(Dn, float(P2))
                if guide is not None:
                    g = abs(float(guide[y, x]) - float(guide[py, px]))
                    p2[:] = max(float(P1), float(P2) / (1.0 + g / p2_gamma))
                    if round_p2:
                        p2[:] = np.floor(p2 + 0.5)
                if mccnn is not None:
                    lf, rt = mccnn["left"], mccnn["right"]
                    thr = mccnn["D"]
                    a1 = abs(float(lf[y, x]) - float(lf[py, px])) >= thr
                    for d in range(Dn):
                        xr = x - (mccnn["min_disp"] + d)
                        xq = xr - dx
                        if 0 <= xr < W and 0 <= xq < W:
                            a2 = abs(float(rt[y, xr]) - float(rt[py, xq])) >= thr
                        else:
                            a2 = True
                        div = mccnn["Q2"] if (a1 and a2) else (mccnn["Q1"] if (a1 or a2) else 1.0)
                        p1[d] = P1 / div / (mccnn["V"] if dx == 0 else 1.0)
                        p2[d] = P2 / div
                up = np.concatenate([[np.inf], prev[:-1]])  # L(p-r, d-1)
                dn = np.concatenate([prev[1:], [np.inf]])  # L(p-r, d+1)
                best = np.minimum.reduce([prev, up + p1, dn + p1, pm + p2])
                L[y, x] = c[y, x] + best - pm
        total += L
    if average:
        total /= len(dirs)
    total[inf] = np.inf
    return total


def _int_volume(rng, H=9, W=13, D=6, hi=40, min_disp=0, invalid=True):
    vol = rng.integers(0, hi, size=(H, W, D)).astype(np.float32)
    if invalid:
        x = np.arange(W)[None, :, None]
        d = min_disp + np.arange(D)[None, None, :]
        vol = np.where(x - d < 0, np.float32(np.inf), vol).astype(np.float32)
    return vol


@pytest.mark.parametrize("paths", [4, 8, 16])
def test_equals_reference_integer_costs(paths):
    rng = np.random.default_rng(paths)
    vol = _int_volume(rng)
    got = sgm(vol, 3, 20, paths=paths)
    want = reference_sgm(vol, 3, 20, paths)
    assert got.dtype == np.float32 and got.shape == vol.shape
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("paths", [4, 8, 16])
def test_adaptive_p2_equals_reference(paths):
    rng = np.random.default_rng(10 + paths)
    vol = _int_volume(rng, H=8, W=11, D=5)
    # guide values 0/1 with gamma 1: P2' in {P2, P2 / 2} -> integer arithmetic, exact comparison
    guide = rng.integers(0, 2, size=vol.shape[:2]).astype(np.float32)
    got = sgm(vol, 2, 24, paths=paths, guide=guide, p2_gamma=1.0)
    want = reference_sgm(vol, 2, 24, paths, guide=guide, p2_gamma=1.0)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    # a generic float guide on integer costs: P2' rounded to an integer, exact integer arithmetic
    guide = rng.random(vol.shape[:2]).astype(np.float32)
    got = sgm(vol, 2, 24, paths=paths, guide=guide, p2_gamma=0.1)
    want = reference_sgm(vol, 2, 24, paths, guide=guide, p2_gamma=0.1, round_p2=True)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert not np.array_equal(got, sgm(vol, 2, 24, paths=paths))  # the guide matters
    # non-integer costs: float32 arithmetic, P2' not rounded
    volf = vol + np.float32(0.25)
    got = sgm(volf, 2, 24, paths=paths, guide=guide, p2_gamma=0.1)
    want = reference_sgm(volf, 2, 24, paths, guide=guide, p2_gamma=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("paths", [4, 8])
@pytest.mark.parametrize("min_disp", [0, 2, -1])
def test_mccnn_scheme_equals_reference(paths, min_disp):
    rng = np.random.default_rng(paths * 7 + min_disp)
    H, W, D = 9, 14, 6
    vol = _int_volume(rng, H, W, D, min_disp=min_disp)
    left = rng.integers(0, 4, size=(H, W)).astype(np.float32)
    right = rng.integers(0, 4, size=(H, W)).astype(np.float32)
    # penalties and divisors chosen so every P / Q / V is an integer: exact comparison
    kw = dict(Q1=2.0, Q2=4.0, D=2.0, V=2.0, min_disp=min_disp)
    got = sgm_mccnn(vol, left, right, 16, 64, paths=paths, **kw)
    want = reference_sgm(vol, 16, 64, paths, mccnn=dict(left=left, right=right, **kw), average=True)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    # the intensity edges lower the penalties: a different result from constant penalties
    assert not np.array_equal(got, sgm(vol, 16, 64, paths=paths) / paths)


def test_mccnn_float_parameters_close_to_reference():
    rng = np.random.default_rng(5)
    H, W, D = 8, 12, 5
    vol = rng.random((H, W, D)).astype(np.float32)
    left = rng.standard_normal((H, W)).astype(np.float32)
    right = rng.standard_normal((H, W)).astype(np.float32)
    kw = dict(Q1=4.0, Q2=8.0, D=0.08, V=1.5, min_disp=0)  # MC-CNN Middlebury fast
    got = sgm_mccnn(vol, left, right, 2.3, 55.9, **kw)
    want = reference_sgm(vol, 2.3, 55.9, 4, mccnn=dict(left=left, right=right, **kw), average=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_inf_handling():
    rng = np.random.default_rng(3)
    vol = _int_volume(rng, H=6, W=10, D=5, min_disp=1)
    vol[2, 7, :] = np.inf  # a pixel with no valid disparity at all
    got = sgm(vol, 1, 8, paths=8)
    want = reference_sgm(vol, 1, 8, 8)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert np.array_equal(np.isinf(got), np.isinf(vol))
    assert np.isfinite(got[~np.isinf(vol)]).all()
    # the winner is never an invalid disparity
    k = np.argmin(got, axis=2)
    some_valid = np.isfinite(vol).any(axis=2)
    assert not np.isinf(np.take_along_axis(vol, k[..., None], 2)[..., 0][some_valid]).any()


def test_zero_penalties_is_sum_of_costs():
    rng = np.random.default_rng(4)
    vol = rng.random((7, 9, 4)).astype(np.float32)
    # with P1 = P2 = 0 every path cost is C + min_k L(p-r, k) - min_k L(p-r, k) = C: the sum is paths * C
    np.testing.assert_allclose(sgm(vol, 0, 0, paths=8), 8 * vol, rtol=1e-6)


def test_recovers_disparity_of_noisy_plane():
    rng = np.random.default_rng(6)
    H, W, D = 20, 30, 8
    vol = rng.random((H, W, D)).astype(np.float32)
    vol[:, :, 5] -= 0.3  # weak, noisy evidence for d = 5 everywhere
    wta = np.argmin(vol, axis=2)
    agg = np.argmin(sgm(vol, 2.0, 4.0, paths=8), axis=2)
    assert (agg == 5).all() and (wta == 5).mean() < 0.5


def test_deterministic():
    rng = np.random.default_rng(8)
    vol = rng.random((10, 12, 6)).astype(np.float32)
    assert np.array_equal(sgm(vol, 0.1, 0.5, 16), sgm(vol, 0.1, 0.5, 16))


@pytest.mark.parametrize(
    "vol, kw, msg",
    [
        (np.zeros((4, 5), np.float32), {}, "3-D"),
        (np.zeros((4, 5, 3), np.float64), {}, "float32"),
        (np.zeros((4, 5, 3), np.uint16), {}, "float32"),
        (np.zeros((0, 5, 3), np.float32), {}, "empty"),
        (np.zeros((4, 5, 3), np.float32), {"paths": 6}, "paths"),
        (np.zeros((4, 5, 3), np.float32), {"paths": True}, "paths"),
        (np.zeros((4, 5, 3), np.float32), {"P1": -1}, "P1"),
        (np.zeros((4, 5, 3), np.float32), {"P2": -1.0}, "P2"),
        (np.zeros((4, 5, 3), np.float32), {"P1": 5, "P2": 2}, "P2"),
        (np.zeros((4, 5, 3), np.float32), {"P1": float("nan")}, "P1"),
        (np.zeros((4, 5, 3), np.float32), {"guide": np.zeros((4, 6))}, "guide"),
        (np.zeros((4, 5, 3), np.float32), {"guide": np.full((4, 5), np.nan)}, "guide"),
        (np.zeros((4, 5, 3), np.float32), {"guide": np.zeros((4, 5)), "p2_gamma": 0}, "p2_gamma"),
        # a string or a bool is not a penalty (float("1") and float(True) would pass), nor what float32 cannot hold
        (np.zeros((4, 5, 3), np.float32), {"P1": "1"}, "P1 must be a non-negative number"),
        (np.zeros((4, 5, 3), np.float32), {"P2": True}, "P2 must be a non-negative number"),
        (np.zeros((4, 5, 3), np.float32), {"P2": 1e39}, "P2 must be at most 3.4"),
        (np.zeros((4, 5, 3), np.float32), {"guide": np.zeros((4, 5)), "p2_gamma": 1e-300}, "p2_gamma.*float32"),
    ],
)
def test_bad_input(vol, kw, msg):
    args = {"P1": 1, "P2": 4, **kw}
    with pytest.raises(StereoKitError, match=msg):
        sgm(vol, **args)


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_nan_in_volume(bad):
    vol = np.zeros((4, 5, 3), np.float32)
    vol[1, 2, 0] = bad
    with pytest.raises(StereoKitError, match="NaN"):
        sgm(vol, 1, 4)


def test_mccnn_bad_input():
    vol = np.zeros((4, 5, 3), np.float32)
    img = np.zeros((4, 5), np.float32)
    with pytest.raises(StereoKitError, match="right"):
        sgm_mccnn(vol, img, np.zeros((3, 5)), 1, 4, 2, 4, 0.1, 1.5)
    with pytest.raises(StereoKitError, match="Q1"):
        sgm_mccnn(vol, img, img, 1, 4, 0, 4, 0.1, 1.5)
    with pytest.raises(StereoKitError, match="V"):
        sgm_mccnn(vol, img, img, 1, 4, 2, 4, 0.1, -1)
    with pytest.raises(StereoKitError, match="paths"):
        sgm_mccnn(vol, img, img, 1, 4, 2, 4, 0.1, 1.5, paths=5)
    # divisors that float32 flushes to zero would divide by zero inside the kernel
    for q1, q2, v in [(1e-300, 4, 1.5), (2, 1e-46, 1.5), (2, 4, 1e-40)]:
        with pytest.raises(StereoKitError, match="float32's smallest normal"):
            sgm_mccnn(vol, img, img, 1, 4, q1, q2, 0.1, v)
    assert np.isfinite(sgm_mccnn(vol, img, img, 1, 4, 1.2e-38, 4, 0.1, 1.5)).all()  # the smallest normal runs


def test_scaled_penalties_follow_cost_units():
    rng = np.random.default_rng(9)
    vol = rng.random((10, 12, 8)).astype(np.float32)
    p = scaled_penalties(vol, 0.1, 1.0)
    p10 = scaled_penalties(vol * 10, 0.1, 1.0)
    np.testing.assert_allclose(np.array(p10), 10 * np.array(p), rtol=1e-5)
    assert cost_scale(vol) > 0
    # aggregating a rescaled volume with rescaled penalties gives the rescaled result
    a = sgm(vol, *p)
    b = sgm(vol * 10, *p10)
    np.testing.assert_allclose(b, 10 * a, rtol=1e-4)


@pytest.mark.parametrize("paths", [4, 8, 16])
def test_float_arithmetic_equals_reference(paths):
    # half-integer penalties force the float32 kernel; all values stay multiples of 0.5: exact
    rng = np.random.default_rng(20 + paths)
    vol = _int_volume(rng)
    np.testing.assert_array_equal(sgm(vol, 2.5, 20.5, paths), reference_sgm(vol, 2.5, 20.5, paths).astype(np.float32))
    # negative costs (float kernel, scalar minimum)
    neg = np.where(np.isinf(vol), vol, vol - 25).astype(np.float32)
    np.testing.assert_array_equal(sgm(neg, 3, 20, paths), reference_sgm(neg, 3, 20, paths).astype(np.float32))


def test_int16_overflow_falls_back_to_float():
    # a cost too large for the int16 sums, hidden from the sparse pre-check: the kernel notices and redoes in float
    rng = np.random.default_rng(30)
    vol = _int_volume(rng, H=40, W=40, D=4)
    vol[1, 1, 2] = 40000
    np.testing.assert_array_equal(sgm(vol, 3, 20, 8), reference_sgm(vol, 3, 20, 8).astype(np.float32))
    vol[1, 1, 2] = 7.5  # not an integer
    np.testing.assert_array_equal(sgm(vol, 3, 20, 8), reference_sgm(vol, 3, 20, 8).astype(np.float32))


def test_path_directions_are_the_textbook_sets():
    axis = {(1, 0), (-1, 0), (0, 1), (0, -1)}
    diagonal = {(1, 1), (-1, -1), (1, -1), (-1, 1)}
    knight = {(sx * a, sy * b) for a, b in ((1, 2), (2, 1)) for sx in (1, -1) for sy in (1, -1)}
    for paths, expected in ((4, axis), (8, axis | diagonal), (16, axis | diagonal | knight)):
        dirs = path_directions(paths)
        assert len(dirs) == paths and set(dirs) == expected  # no direction twice, none missing


@pytest.mark.parametrize("paths", [4, 8, 16])
def test_a_constant_cost_offset_shifts_every_path_cost_by_it(paths):
    # L_r(p, d) = C(p, d) + min(...) - min_k L_r(p - r, k): adding c to every cost adds c to every L_r (the
    # subtracted minimum cancels it), so the sum over the paths grows by paths * c, exactly for integers.
    # With c = 8500 the costs no longer fit the int16 sweep sums (paths / 2 directions per sweep, each up to
    # cost + P2): this also checks that such volumes are not aggregated in int16.
    rng = np.random.default_rng(paths)
    vol = rng.integers(0, 400, size=(6, 9, 5)).astype(np.float32)
    base = sgm(vol, 3, 20, paths)
    shifted = sgm(vol + np.float32(8500), 3, 20, paths)
    np.testing.assert_array_equal(shifted, base + np.float32(paths * 8500))


@pytest.mark.parametrize("offset", [0.0, 0.25])  # integer costs (int16 kernel) and non-integer ones (float32)
def test_adaptive_p2_never_drops_below_p1(offset):
    # a checkerboard guide differs by 1 between horizontal and vertical neighbours; with p2_gamma = 0.01,
    # P2 / (1 + 1 / 0.01) = 40 / 101 < P1, so P2' = max(P1, ...) = P1 on every step of the 4 paths:
    # the same as constant penalties P1 = P2 = 10.
    rng = np.random.default_rng(1)
    vol = (rng.integers(0, 60, size=(7, 8, 5)) + offset).astype(np.float32)
    checker = (np.indices((7, 8)).sum(axis=0) % 2).astype(np.float32)
    got = sgm(vol, 10, 40, paths=4, guide=checker, p2_gamma=0.01)
    np.testing.assert_array_equal(got, sgm(vol, 10, 10, paths=4))


@pytest.mark.parametrize("paths", [4, 8, 16])
def test_integer_costs_at_and_just_above_the_int16_limit_equal_reference(paths):
    # The int16 kernel takes integer costs up to lim = 32767 // (paths / 2) - P2 (a sweep sums paths / 2 path
    # costs, each at most cost + P2). At the limit every path cost lies above 8000 (4 and 8 paths), so the kernel's
    # int16 padding and minima must exceed that; just above the limit (costs up to lim + P2 - 1) the sums can pass
    # 32767 and only the float32 kernel is exact.
    P1, P2 = 1, 100
    top = 32767 // (paths // 2)
    rng = np.random.default_rng(40 + paths)
    for hi in (top - P2, top - P1):  # at the limit (int16), above it (float32)
        vol = _int_volume(rng, H=7, W=10, D=5, hi=61) + np.float32(hi - 60)
        vol[3, 4, 2] = hi
        np.testing.assert_array_equal(sgm(vol, P1, P2, paths), reference_sgm(vol, P1, P2, paths).astype(np.float32))


def test_cost_scale_is_the_median_contrast_of_the_finite_costs():
    # every pixel sampled (samples >= H * W): per pixel (mean - min) over its finite costs, then the median.
    # (0, 2, 4, inf): 2 - 0 = 2; (1, 1, inf, inf): 0; (10, 20, 30, 40): 15; all +inf: no finite cost, skipped.
    vol = np.array([[[0, 2, 4, np.inf], [1, 1, np.inf, np.inf], [10, 20, 30, 40], [np.inf] * 4]], np.float32)
    assert cost_scale(vol) == 2.0
    assert scaled_penalties(vol, 0.5, 3.0) == (1.0, 6.0)
    assert scaled_penalties(vol) == (0.1 * 2.0, 1.0 * 2.0)  # the signature's defaults p1 = 0.1, p2 = 1
    # a volume without contrast has scale 1 (not 0, which would switch the penalties off)
    assert cost_scale(np.full((2, 3, 4), 7.0, np.float32)) == 1.0
    with pytest.raises(StereoKitError, match="NaN"):
        cost_scale(np.where(vol == 20, np.float32(np.nan), vol))
    with pytest.raises(StereoKitError, match="no finite cost"):
        cost_scale(np.full((2, 2, 3), np.inf, np.float32))


def test_colour_guide_is_bt601_luma_of_rgb_alpha_ignored():
    # an (H, W, 3) or (H, W, 4) guide is converted to luma 0.299 R + 0.587 G + 0.114 B. Black, pure red and pure
    # blue pixels have luma 0, 0.299, 0.114 exactly, so the RGB(A) guide must give the grey guide's result, and
    # reading the channels as BGR (red 0.114, blue 0.299) must not.
    rng = np.random.default_rng(12)
    vol = _int_volume(rng, H=8, W=11, D=5)
    which = rng.integers(0, 3, size=(8, 11))  # 0 black, 1 red, 2 blue
    rgba = np.zeros((8, 11, 4), np.float32)
    rgba[..., 0] = which == 1
    rgba[..., 2] = which == 2
    rgba[..., 3] = rng.random((8, 11))  # alpha: ignored
    luma = np.select([which == 1, which == 2], [np.float32(0.299), np.float32(0.114)], 0).astype(np.float32)
    want = sgm(vol, 2, 24, 8, guide=luma, p2_gamma=0.1)
    np.testing.assert_array_equal(sgm(vol, 2, 24, 8, guide=rgba[..., :3], p2_gamma=0.1), want)
    np.testing.assert_array_equal(sgm(vol, 2, 24, 8, guide=rgba, p2_gamma=0.1), want)
    bgr = np.select([which == 1, which == 2], [np.float32(0.114), np.float32(0.299)], 0).astype(np.float32)
    assert not np.array_equal(sgm(vol, 2, 24, 8, guide=bgr, p2_gamma=0.1), want)


@pytest.mark.parametrize("dtype", [complex, bool, str])
def test_colour_guide_must_be_numeric_like_a_grey_one(dtype):
    # a complex colour guide lost its imaginary part silently, a boolean one was accepted (a grey one is refused)
    # and a string one failed with a bare ValueError: all refused, naming the guide, as (H, W) guides are
    vol = np.zeros((4, 5, 3), np.float32)
    for shape in ((4, 5), (4, 5, 3), (4, 5, 4)):
        with pytest.raises(StereoKitError, match="guide must be numeric"):
            sgm(vol, 1, 4, guide=np.zeros(shape, dtype))
    with pytest.raises(StereoKitError, match="left must be numeric"):
        sgm_mccnn(vol, np.zeros((4, 5, 3), dtype), np.zeros((4, 5)), 1, 4, 2, 4, 0.1, 1.5)


@pytest.mark.parametrize("samples", [0, -1, 1.5, "10", True])
def test_cost_scale_samples_must_be_a_positive_integer(samples):
    # 0 reported "no finite cost", the others failed inside NumPy (ValueError / TypeError) without naming samples
    vol = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    with pytest.raises(StereoKitError, match="samples must be a positive integer"):
        cost_scale(vol, samples=samples)


@pytest.mark.parametrize("kw, msg", [
    (dict(D=-1.0), "D must be a non-negative number"),  # every |difference| >= -1: always the smallest penalties
    (dict(D="0.1"), "D must be a non-negative number"),  # np.float32("0.1") would parse it
    (dict(D=float("nan")), "D must be a non-negative number"),  # no comparison with NaN holds: never divided
    (dict(min_disp=1.5), "min_disp must be an integer"),  # int() would truncate it to 1
    (dict(min_disp="2"), "min_disp must be an integer"),
    (dict(min_disp=True), "min_disp must be an integer"),
    (dict(P1=5, P2=2), r"P2 \(2\) must be >= P1 \(5\)"),  # as sgm: P1 > P2 makes a jump cheaper than a step
])
def test_mccnn_penalties_threshold_and_min_disp_are_checked(kw, msg):
    vol = np.zeros((4, 5, 3), np.float32)
    img = np.zeros((4, 5), np.float32)
    args = {"P1": 1, "P2": 4, "Q1": 2.0, "Q2": 4.0, "D": 0.1, "V": 1.5, **kw}
    with pytest.raises(StereoKitError, match=msg):
        sgm_mccnn(vol, img, img, **args)
