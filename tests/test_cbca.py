"""Cross-based cost aggregation against a brute-force reference (MC-CNN's direct double loop)."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.cbca import cross_arms, cross_based_aggregation


def reference_arms(img, L1, tau1):
    H, W = img.shape
    out = np.empty((4, H, W), np.int64)
    for y in range(H):
        for x in range(W):
            for k, (dx, dy) in enumerate([(-1, 0), (1, 0), (0, -1), (0, 1)]):
                xx, yy = x + dx, y + dy
                while 0 <= xx < W and 0 <= yy < H:
                    dist = max(abs(xx - x), abs(yy - y))
                    if dist > 1 and (abs(float(img[yy, xx]) - float(img[y, x])) >= tau1 or dist >= L1):
                        break
                    xx, yy = xx + dx, yy + dy
                out[k, y, x] = xx if k < 2 else yy
    return out


def reference_cbca(vol, left, right, L1, tau1, iterations, min_disp=0):
    """Sum over the support region pixel by pixel, as adcensus.cu's cbca kernel (finite costs only)."""
    vol = vol.astype(np.float64)
    H, W, D = vol.shape
    aL, aR = reference_arms(left, L1, tau1), reference_arms(right, L1, tau1)
    for _ in range(iterations):
        new = vol.copy()
        for y in range(H):
            for x in range(W):
                for k in range(D):
                    disp = min_disp + k
                    xr = x - disp
                    if not 0 <= xr < W:
                        continue
                    s, n = 0.0, 0
                    for yy in range(max(aL[2, y, x], aR[2, y, xr]) + 1, min(aL[3, y, x], aR[3, y, xr])):
                        lo = max(aL[0, yy, x], aR[0, yy, xr] + disp)
                        hi = min(aL[1, yy, x], aR[1, yy, xr] + disp)
                        for xx in range(lo + 1, hi):
                            if np.isfinite(vol[yy, xx, k]):
                                s += vol[yy, xx, k]
                                n += 1
                    if n:
                        new[y, x, k] = s / n
        vol = new
    return vol


def _volume(rng, H, W, D, min_disp=0):
    vol = rng.random((H, W, D)).astype(np.float32)
    x = np.arange(W)[None, :, None]
    d = min_disp + np.arange(D)[None, None, :]
    return np.where((x - d < 0) | (x - d >= W), np.float32(np.inf), vol).astype(np.float32)


@pytest.mark.parametrize("min_disp", [0, 2, -2])
@pytest.mark.parametrize("iterations", [1, 2])
def test_equals_brute_force(min_disp, iterations):
    rng = np.random.default_rng(min_disp + 10 * iterations)
    H, W, D = 9, 13, 5
    vol = _volume(rng, H, W, D, min_disp)
    # piecewise-constant images with noise: arms of varied lengths
    left = (rng.integers(0, 3, size=(H, W)) * 0.5 + rng.random((H, W)) * 0.05).astype(np.float32)
    right = np.roll(left, -2, axis=1) + rng.random((H, W)).astype(np.float32) * 0.05
    got = cross_based_aggregation(vol, left, right, L1=4, tau1=0.2, iterations=iterations, min_disp=min_disp)
    want = reference_cbca(vol, left, right, 4, 0.2, iterations, min_disp)
    assert got.dtype == np.float32 and got.shape == vol.shape
    np.testing.assert_array_equal(np.isinf(got), np.isinf(vol))
    fin = np.isfinite(vol)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5, atol=1e-6)


def test_constant_volume_stays_constant():
    rng = np.random.default_rng(1)
    H, W, D = 12, 16, 4
    vol = np.where(np.isinf(_volume(rng, H, W, D)), np.float32(np.inf), np.float32(0.7)).astype(np.float32)
    img = rng.random((H, W)).astype(np.float32)
    got = cross_based_aggregation(vol, img, img, L1=5, tau1=0.3, iterations=3)
    np.testing.assert_array_equal(got, vol)


def test_iterations_zero_is_copy_and_input_untouched():
    rng = np.random.default_rng(2)
    vol = _volume(rng, 6, 8, 3)
    img = rng.random((6, 8)).astype(np.float32)
    keep = vol.copy()
    got = cross_based_aggregation(vol, img, img, 3, 0.1, iterations=0)
    assert got is not vol and np.array_equal(got, vol)
    cross_based_aggregation(vol, img, img, 3, 0.1, iterations=2)
    assert np.array_equal(vol, keep)


def test_arms_stop_at_edges_and_length():
    img = np.zeros((7, 12), np.float32)
    img[:, 6:] = 1.0  # vertical intensity edge between x = 5 and x = 6
    img[4:, :] += 0.5  # horizontal edge between y = 3 and y = 4
    arms = cross_arms(img, L1=4, tau1=0.25)
    np.testing.assert_array_equal(arms, reference_arms(img, 4, 0.25))
    # x = 4 (two left of the edge): right arm includes x = 5 only
    assert arms[1, 1, 4] == 6
    # x = 5 (just left of the edge): the immediate neighbour is always included, the arm stops after it
    assert arms[1, 1, 5] == 7
    # far from edges: arm length L1 - 1 = 3 in each direction
    assert arms[0, 1, 3 + 0] == -1  # reaches the border first
    assert arms[1, 1, 0] == 4 and arms[0, 1, 11] == 7
    # vertical arm of (1, 2) stops at the horizontal edge: y in (-1, 4)
    assert arms[2, 1, 2] == -1 and arms[3, 1, 2] == 4
    # a flat image: arms limited by L1 only
    flat = cross_arms(np.zeros((20, 20)), L1=5, tau1=0.1)
    assert flat[0, 10, 10] == 5 and flat[1, 10, 10] == 15 and flat[2, 10, 10] == 5 and flat[3, 10, 10] == 15


def test_aggregation_respects_edges():
    # two regions with different costs at d = 0: aggregation must not mix them across the intensity edge
    H, W, D = 8, 12, 2
    img = np.zeros((H, W), np.float32)
    img[:, 6:] = 1.0
    vol = np.zeros((H, W, D), np.float32)
    vol[:, 6:, 0] = 5.0
    vol[:, :, 1] = np.inf
    vol[:, 1:, 1] = 1.0
    # (one iteration: the always-included immediate neighbour lets each further iteration leak one pixel)
    got = cross_based_aggregation(vol, img, img, L1=10, tau1=0.5, iterations=1)
    np.testing.assert_array_equal(got[:, :5, 0], 0.0)
    np.testing.assert_array_equal(got[:, 7:, 0], 5.0)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(vol=np.zeros((4, 5), np.float32)), "3-D"),
        (dict(vol=np.zeros((4, 5, 2), np.float64)), "float32"),
        (dict(left=np.zeros((4, 6))), "left"),
        (dict(right=np.full((4, 5), np.nan)), "right"),
        (dict(L1=-1), "L1"),
        (dict(L1=2.5), "L1"),
        (dict(tau1=-0.1), "tau1"),
        (dict(iterations=-1), "iterations"),
        (dict(iterations=10**12), "iterations must be at most 1000"),  # a slip would loop for ever
        (dict(tau1="0.1"), "tau1 must be a non-negative number, got '0.1'"),  # as every option: no strings
        (dict(iterations=1.5), "iterations must be a non-negative integer"),
        (dict(vol=np.full((4, 5, 2), np.nan, np.float32)), "NaN"),
    ],
)
def test_bad_input(kw, msg):
    args = dict(vol=np.zeros((4, 5, 2), np.float32), left=np.zeros((4, 5)), right=np.zeros((4, 5)), L1=3, tau1=0.1,
                iterations=1)
    args.update(kw)
    with pytest.raises(StereoKitError, match=msg):
        cross_based_aggregation(args.pop("vol"), **args)


@pytest.mark.parametrize("bad", [np.ones((4, 5, 3), np.complex64), np.ones((4, 5, 3), bool), np.full((4, 5, 3), "a")])
def test_colour_images_must_be_numeric_like_gray_ones(bad):
    # checked before the luma conversion, which would drop an imaginary part or turn booleans into numbers
    vol = np.zeros((4, 5, 2), np.float32)
    with pytest.raises(StereoKitError, match="left must be numeric"):
        cross_based_aggregation(vol, bad, np.zeros((4, 5)), L1=3, tau1=0.1)
    with pytest.raises(StereoKitError, match="image must be numeric"):
        cross_arms(bad, L1=3, tau1=0.1)


def test_integral_floats_count_as_integers_as_for_every_option():
    rng = np.random.default_rng(3)
    vol = rng.random((6, 9, 3)).astype(np.float32)
    img = rng.random((6, 9)).astype(np.float32)
    want = cross_based_aggregation(vol, img, img, L1=4, tau1=0.3, iterations=2, min_disp=1)
    got = cross_based_aggregation(vol, img, img, L1=4.0, tau1=np.float32(0.3), iterations=2.0, min_disp=1.0)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(want, cross_based_aggregation(vol, img, img, L1=4, tau1=0.3, iterations=1, min_disp=1))


def test_arm_stops_at_a_difference_equal_to_tau1():
    # row 0 0 0.5 0.5 0.5 0.5 (exact binary fractions), L1 large: from x = 0 the immediate neighbour x = 1 is
    # always in, x = 2 differs by exactly tau1 = 0.5 -> the right arm ends (exclusive) at 2
    img = np.array([[0.0, 0.0, 0.5, 0.5, 0.5, 0.5]], np.float32)
    arms = cross_arms(img, L1=10, tau1=0.5)
    assert arms[1, 0, 0] == 2
    # from x = 5 leftwards: 4 always in, 3 and 2 equal (diff 0 < 0.5), 1 differs by 0.5 -> ends at 1
    assert arms[0, 0, 5] == 1
    # vertically, likewise
    col = img.T.copy()
    arms_v = cross_arms(col, L1=10, tau1=0.5)
    assert arms_v[3, 0, 0] == 2 and arms_v[2, 5, 0] == 1


def test_interior_inf_costs_are_left_out_of_sums_and_counts():
    # a cost may mark more cells than the out-of-image ones as invalid (+inf): they are skipped in the sums and the
    # counts, and a cell whose whole support region is +inf keeps its +inf (not 0, not NaN)
    rng = np.random.default_rng(7)
    H, W, D = 9, 13, 4
    vol = _volume(rng, H, W, D, min_disp=1)
    holes = rng.random((H, W, D)) < 0.2
    vol[holes] = np.inf
    vol[:, :, 2] = np.inf  # disparity 3 invalid everywhere: every region there is empty
    left = (rng.integers(0, 3, size=(H, W)) * 0.5 + rng.random((H, W)) * 0.05).astype(np.float32)
    right = np.roll(left, -1, axis=1) + rng.random((H, W)).astype(np.float32) * 0.05
    got = cross_based_aggregation(vol, left, right, L1=4, tau1=0.2, iterations=2, min_disp=1)
    want = reference_cbca(vol, left, right, 4, 0.2, 2, min_disp=1)
    assert np.isposinf(got[:, :, 2]).all()
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    assert fin.sum() > 0.6 * vol.size
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5, atol=1e-6)


def test_out_of_image_entries_are_returned_unchanged_even_when_finite():
    # a volume that does not mark the cells whose match leaves the right image keeps their values as given
    rng = np.random.default_rng(8)
    H, W, D = 6, 9, 4
    vol = rng.random((H, W, D)).astype(np.float32)
    x = np.arange(W)[None, :, None]
    outside = np.broadcast_to((x - (-1 + np.arange(D))[None, None, :] < 0)
                              | (x - (-1 + np.arange(D))[None, None, :] >= W), vol.shape)
    vol[outside] = 7.0
    img = rng.random((H, W)).astype(np.float32)
    got = cross_based_aggregation(vol, img, img, L1=4, tau1=0.5, iterations=3, min_disp=-1)
    assert outside.any() and np.all(got[outside] == 7.0)
    want = reference_cbca(vol, img, img, 4, 0.5, 3, min_disp=-1)
    np.testing.assert_allclose(got[~outside], want[~outside], rtol=1e-5, atol=1e-6)


def test_the_largest_iteration_count_is_accepted():
    vol = np.full((3, 4, 2), 0.25, np.float32)
    img = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(cross_based_aggregation(vol, img, img, 3, 0.1, iterations=1000), vol)
    with pytest.raises(StereoKitError, match="at most 1000"):
        cross_based_aggregation(vol, img, img, 3, 0.1, iterations=1001)


def test_colour_images_use_bt601_luma():
    # R and B swapped weights (a BGR mix-up) or a plain channel mean would give other crosses on this image
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 4, size=(8, 11, 3)).astype(np.float32) * np.array([1.0, 0.1, 0.5], np.float32)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    want = reference_arms(luma, 5, 0.2)
    got = cross_arms(rgb, L1=5, tau1=0.2)
    np.testing.assert_array_equal(got, want)
    # (the test is only meaningful if the mixes differ)
    assert not np.array_equal(want, reference_arms(rgb[..., ::-1] @ np.array([0.299, 0.587, 0.114]), 5, 0.2))
    assert not np.array_equal(want, reference_arms(rgb.mean(axis=2), 5, 0.2))
    # RGBA: the alpha channel is ignored
    rgba = np.concatenate([rgb, rng.random((8, 11, 1)).astype(np.float32) * 9], axis=2)
    np.testing.assert_array_equal(cross_arms(rgba, L1=5, tau1=0.2), want)
    # the aggregation builds its crosses the same way
    vol = _volume(rng, 8, 11, 3)
    np.testing.assert_array_equal(cross_based_aggregation(vol, rgb, rgba, 5, 0.2),
                                  cross_based_aggregation(vol, luma.astype(np.float32), luma.astype(np.float32), 5,
                                                          0.2))


@pytest.mark.parametrize("kw, msg", [(dict(tau1=float("nan")), "tau1"), (dict(tau1=float("inf")), "tau1"),
                                     (dict(min_disp=1.5), "min_disp"), (dict(min_disp=True), "min_disp"),
                                     (dict(L1=True), "L1")])
def test_non_finite_or_non_integer_parameters_are_refused(kw, msg):
    # a NaN tau1 never stops an arm (every comparison is False) and int(1.5) would shift the disparities silently
    args = dict(L1=3, tau1=0.1, iterations=1, min_disp=0)
    args.update(kw)
    vol = np.zeros((4, 5, 2), np.float32)
    img = np.zeros((4, 5), np.float32)
    with pytest.raises(StereoKitError, match=msg):
        cross_based_aggregation(vol, img, img, **args)
