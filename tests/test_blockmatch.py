"""The fused block-matching fast path (stereokit.blockmatch) against the volume path it replaces for bm-sad/bm-ssd."""

import numpy as np
import pytest

import stereokit
from stereokit import StereoKitError, StereoPair
from stereokit.blockmatch import block_match
from stereokit.classical import _BM_REFINE, disparity_from_volume
from stereokit.cost import cost_volume
from stereokit.disparity import disparity_with_lr_check, winner_takes_all


def exact_volume(left, right, num_disp, min_disp, window, squared):
    """Integer window sums over the channels, brute force, with the volume path's borders: rows and columns clamped,
    L[clamp(x')] against R[clamp(x' - d)], +inf where the centre match x - d is outside the right image."""
    h, w = left.shape[:2]
    a3 = left.reshape(h, w, -1).astype(np.int64)
    b3 = right.reshape(h, w, -1).astype(np.int64)
    r = window // 2
    xs = np.arange(-r, w + r)
    rows = np.clip(np.arange(-r, h + r), 0, h - 1)
    vol = np.empty((h, w, num_disp), dtype=np.float64)
    for k in range(num_disp):
        d = min_disp + k
        diff = a3[:, np.clip(xs, 0, w - 1)] - b3[:, np.clip(xs - d, 0, w - 1)]
        pix = (diff * diff if squared else np.abs(diff)).sum(axis=2)[rows]  # (h + 2r, w + 2r)
        cs = np.pad(pix.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        n = 2 * r + 1
        vol[:, :, k] = cs[n:, n:] - cs[:-n, n:] - cs[n:, :-n] + cs[:-n, :-n]
        x = np.arange(w)
        vol[:, (x - d < 0) | (x - d >= w), k] = np.inf
    assert np.nanmax(vol[np.isfinite(vol)]) < 2**24  # exact in the float32 the disparity functions use
    return vol.astype(np.float32)


def reference(vol, min_disp, subpixel, uniqueness, lr):
    if lr is None:
        return winner_takes_all(vol, min_disp, subpixel, uniqueness)
    return disparity_with_lr_check(vol, min_disp, subpixel, uniqueness, lr)


def random_pair(rng, h, w, channels, dtype=np.uint8, peak=255, shift=3, noise=12):
    shape = (h, w, channels) if channels == 3 else (h, w)
    left = rng.integers(0, peak + 1, shape)
    right = np.clip(np.roll(left, -shift, axis=1) + rng.integers(-noise, noise + 1, shape), 0, peak)
    return left.astype(dtype), right.astype(dtype)


CASES = [  # channels, window, num_disp, min_disp, squared, subpixel, uniqueness, lr
    (3, 7, 12, 0, False, "equiangular", 10.0, 1.0),  # bm-sad's defaults
    (3, 9, 10, 0, True, "parabola", 10.0, 1.0),  # bm-ssd's defaults
    (1, 5, 9, -3, False, "parabola", 0.0, None),
    (1, 3, 7, 2, True, None, 25.0, 0.5),
    (3, 1, 6, -2, False, "equiangular", 5.0, 2.0),
]


@pytest.mark.parametrize("channels, window, num_disp, min_disp, squared, subpixel, uniqueness, lr", CASES)
def test_fast_path_equals_volume_path_on_exact_costs(channels, window, num_disp, min_disp, squared, subpixel,
                                                     uniqueness, lr):
    rng = np.random.default_rng(window * 100 + num_disp)
    left, right = random_pair(rng, 23, 41, channels)
    fast = block_match(left, right, num_disp, min_disp, window=window, squared=squared, subpixel=subpixel,
                       uniqueness=uniqueness, lr_threshold=lr)
    exact = exact_volume(left, right, num_disp, min_disp, window, squared)
    # The volume path computes the same window costs (as means: a positive scale).
    cost = "ssd" if squared else "sad"
    vol = cost_volume(left, right, num_disp, min_disp, cost=cost, window=window)
    scale = 255.0 ** (2 if squared else 1) * channels * window**2
    assert np.array_equal(np.isinf(vol), np.isinf(exact))
    finite = np.isfinite(exact)
    np.testing.assert_allclose(vol[finite] * scale, exact[finite], rtol=1e-5, atol=1e-3)
    # Same winner, same uniqueness and LR decisions, same subpixel offsets as the disparity functions on those costs.
    ref = reference(exact, min_disp, subpixel, uniqueness, lr)
    assert np.array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast, ref, atol=1e-4)
    assert 0.3 < np.mean(~np.isnan(fast))
    # Against the float volume itself: identical except at floating-point ties.
    ref_float = reference(vol, min_disp, subpixel, uniqueness, lr)
    same = (np.isnan(fast) & np.isnan(ref_float)) | (np.abs(fast - ref_float) <= 1e-4)
    assert same.mean() > 0.98


def test_integer_winner_identical_to_float_volume_without_ties():
    rng = np.random.default_rng(7)
    left, right = random_pair(rng, 30, 50, 3, noise=40)
    vol = cost_volume(left, right, 10, 0, cost="sad", window=7)
    fast = block_match(left, right, 10, 0, window=7, subpixel="equiangular", uniqueness=0.0, lr_threshold=None)
    ref = winner_takes_all(vol, 0, "equiangular", 0.0)
    s = np.sort(np.where(np.isfinite(vol), vol, 9.0), axis=2)
    no_tie = s[:, :, 1] - s[:, :, 0] > 1e-6
    assert no_tie.mean() > 0.95
    assert np.array_equal(np.floor(fast + 0.5)[no_tie], np.floor(ref + 0.5)[no_tie])
    np.testing.assert_allclose(fast[no_tie], ref[no_tie], atol=1e-4)


def test_uint16_and_float64_accumulation():
    # SSD on uint16 with a span of 600: keys beyond 2**24, so the kernel sums in float64; still exact.
    rng = np.random.default_rng(3)
    left, right = random_pair(rng, 20, 36, 1, dtype=np.uint16, peak=600, noise=30)
    fast = block_match(left, right, 8, 0, window=3, squared=True, subpixel="parabola", uniqueness=10.0,
                       lr_threshold=1.0)
    ref = reference(exact_volume(left, right, 8, 0, 3, True), 0, "parabola", 10.0, 1.0)
    assert np.array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast, ref, atol=1e-4)


@pytest.mark.parametrize("method, cost, window", [("bm-sad", "sad", 7), ("bm-ssd", "ssd", 9)])
def test_matcher_uses_fast_path_with_unchanged_refinement(method, cost, window):
    rng = np.random.default_rng(11)
    left, right = random_pair(rng, 40, 64, 3, shift=5)
    disp = stereokit.run_matcher(StereoPair(left, right), method, 12)
    refine = dict(_BM_REFINE, subpixel="parabola") if method == "bm-ssd" else _BM_REFINE
    ref = disparity_from_volume(exact_volume(left, right, 12, 0, window, cost == "ssd"), 0, **refine)
    assert np.array_equal(np.isnan(disp), np.isnan(ref))
    np.testing.assert_allclose(disp, ref, atol=1e-4)
    assert np.nanmedian(disp) == pytest.approx(5.0, abs=0.01)


def test_float_and_gray_options_use_the_volume_path():
    rng = np.random.default_rng(5)
    left, right = random_pair(rng, 30, 48, 3, shift=4)
    lf, rf = left.astype(np.float32) / 255, right.astype(np.float32) / 255
    disp = stereokit.run_matcher(StereoPair(lf, rf), "bm-sad", 10)
    ref = disparity_from_volume(cost_volume(lf, rf, 10, 0, cost="sad", window=7), 0, **_BM_REFINE)
    np.testing.assert_array_equal(disp, ref)
    pair = StereoPair(left, right)
    gray = stereokit.run_matcher(pair, "bm-sad", 10, color=False)
    ref = disparity_from_volume(cost_volume(pair.left_gray, pair.right_gray, 10, 0, cost="sad", window=7), 0,
                                **_BM_REFINE)
    np.testing.assert_array_equal(gray, ref)


def test_bad_input():
    a = np.zeros((10, 20), np.uint8)
    with pytest.raises(StereoKitError, match="uint8 or uint16"):
        block_match(a, a.astype(np.uint16), 4)
    with pytest.raises(StereoKitError, match="uint8 or uint16"):
        block_match(a.astype(np.float32), a.astype(np.float32), 4)
    with pytest.raises(StereoKitError, match="square"):
        block_match(a, a, 4, window=(5, 3))
    with pytest.raises(StereoKitError, match="wider than the image"):
        block_match(a, a, 40)
    with pytest.raises(StereoKitError, match="uniqueness"):
        block_match(a, a, 4, uniqueness=100)


def test_uniqueness_treats_exact_ties_as_ambiguous():
    # a uniform pair: every disparity inside the right image costs 0. With uniqueness on, a second best at the same
    # (zero) cost away from the winner's neighbours is a tie: ambiguous, NaN. x = 0, 1 have no such candidate
    # (disparities 0..x only), so they keep the smallest disparity, 0.
    a = np.full((5, 12), 100, np.uint8)
    out = block_match(a, a, 6, window=3, subpixel=None, uniqueness=10.0, lr_threshold=None)
    assert np.all(out[:, :2] == 0) and np.isnan(out[:, 2:]).all()
    # without the test the smallest disparity wins every tie
    out = block_match(a, a, 6, window=3, subpixel=None, uniqueness=0.0, lr_threshold=None)
    assert np.all(out == 0)


def test_bad_options_and_empty_images_raise_stereokit_error():
    a = np.zeros((10, 20), np.uint8)
    with pytest.raises(StereoKitError, match="uint8 or uint16"):
        block_match(np.zeros((0, 20), np.uint8), np.zeros((0, 20), np.uint8), 4)
    for bad in (-1.0, np.nan, "1"):
        with pytest.raises(StereoKitError, match="left-right threshold"):
            block_match(a, a, 4, lr_threshold=bad)
