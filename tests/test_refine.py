"""Refinement: NaN-aware median, speckle removal, background fill."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.fill import fill_invalid_background
from stereokit.refine import fill_invalid, median_filter, remove_speckles


def reference_median(disp, size):
    r = size // 2
    h, w = disp.shape
    out = np.full_like(disp, np.nan)
    for y in range(h):
        for x in range(w):
            if np.isnan(disp[y, x]):
                continue
            win = disp[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]
            vals = np.sort(win[~np.isnan(win)])
            out[y, x] = vals[(len(vals) - 1) // 2]
    return out


def reference_speckles(disp, max_size, max_diff):
    """remove_speckles in NumPy: the 1/16-px int16 copy OpenCV's filterSpeckles works on, built with array ops."""
    import cv2

    valid = np.isfinite(disp)
    lo, hi = float(disp[valid].min()), float(disp[valid].max())
    scale = 16.0 if (hi - lo) * 16.0 < 32000 else 32000.0 / max(hi - lo, 1.0)
    fixed = np.full(disp.shape, -32768, dtype=np.int16)
    fixed[valid] = np.round((disp[valid] - np.float32(lo)) * np.float32(scale)).astype(np.int16)
    cv2.filterSpeckles(fixed, -32768, max_size, max(int(round(max_diff * scale)), 0))
    out = disp.copy()
    out[fixed == -32768] = np.nan
    return out


@pytest.mark.parametrize("spread", [40.0, 3000.0])  # 3000 px: wider than int16 at 1/16 px, a coarser step
def test_speckles_match_the_numpy_reference(spread):
    rng = np.random.default_rng(11)
    base = np.kron(rng.random((12, 15)), np.ones((6, 6))) * spread - spread / 4  # blocks of 36 px, some negative
    disp = (base + rng.random(base.shape) * 0.5).astype(np.float32)
    disp[rng.random(disp.shape) < 0.1] = np.nan
    disp[3, 4] = np.inf
    disp[7, 9] = -np.inf
    for max_size, max_diff in [(30, 1.0), (40, 0.6), (100, 2.0)]:
        out = remove_speckles(disp, max_size, max_diff)
        np.testing.assert_array_equal(out, reference_speckles(disp, max_size, max_diff))
        assert np.isnan(out[3, 4]) and np.isnan(out[7, 9])  # infinite disparities are invalid


def test_speckles_round_half_to_even_at_one_sixteenth():
    # a 1-px blob 4.5 steps of 1/16 px above a 30-px region, with max_diff 4/16 px: rounded half to even (to 4
    # steps, as NumPy rounds) it joins the region and stays; rounded half up (5 steps) it would be a speckle
    disp = np.full((8, 8), np.nan, np.float32)
    disp[:5, :6] = 10.0
    disp[5, 0] = np.float32(10.0) + np.float32(4.5 / 16)
    out = remove_speckles(disp, max_size=10, max_diff=0.25)
    np.testing.assert_array_equal(out, disp)
    np.testing.assert_array_equal(out, reference_speckles(disp, 10, 0.25))


def test_median3_matches_reference_with_infinities_and_borders():
    rng = np.random.default_rng(12)
    disp = (rng.random((23, 31)) * 50 - 10).astype(np.float32)
    disp[rng.random(disp.shape) < 0.35] = np.nan
    np.testing.assert_array_equal(median_filter(disp, 3), reference_median(disp, 3))
    disp[0, 0] = np.inf  # +-inf take the general path, which counts them as values (the network could not)
    disp[5, 5] = -np.inf
    np.testing.assert_array_equal(median_filter(disp, 3), reference_median(disp, 3))


@pytest.mark.parametrize("size", [3, 5])
def test_median_ignores_invalid_pixels(size):
    rng = np.random.default_rng(0)
    disp = rng.random((15, 17)).astype(np.float32) * 30
    disp[rng.random(disp.shape) < 0.3] = np.nan
    out = median_filter(disp, size)
    np.testing.assert_array_equal(out, reference_median(disp, size))


def test_median_removes_salt_keeps_edges():
    disp = np.full((9, 9), 5.0, np.float32)
    disp[:, 5:] = 20.0
    disp[2, 2] = 50.0
    out = median_filter(disp, 3)
    assert out[2, 2] == 5.0
    assert np.array_equal(out[:, 4], disp[:, 4]) and np.array_equal(out[:, 5], disp[:, 5])
    assert np.array_equal(median_filter(disp, 1), disp)
    with pytest.raises(StereoKitError, match="odd"):
        median_filter(disp, 4)


def test_speckles_removed_by_size_and_difference():
    disp = np.full((20, 20), 10.0, np.float32)
    disp[5:7, 5:8] = 30.0  # a 6-pixel blob far from its surroundings
    disp[12:14, 12:14] = 10.5  # within max_diff of the background: part of it
    disp[0, 0] = np.nan
    out = remove_speckles(disp, max_size=10, max_diff=1.0)
    assert np.all(np.isnan(out[5:7, 5:8]))
    assert np.all(out[12:14, 12:14] == 10.5)
    assert np.isnan(out[0, 0]) and np.isnan(out).sum() == 7
    kept = remove_speckles(disp, max_size=5, max_diff=1.0)
    assert np.all(kept[5:7, 5:8] == 30.0)
    assert np.array_equal(remove_speckles(disp, max_size=0), disp, equal_nan=True)


def test_speckles_with_negative_and_subpixel_disparities():
    disp = np.full((10, 10), -3.25, np.float32)
    disp[4, 4] = -1.0  # 2.25 px off: a speckle at max_diff 2, not at max_diff 3
    assert np.isnan(remove_speckles(disp, 4, 2.0)[4, 4])
    assert remove_speckles(disp, 4, 3.0)[4, 4] == -1.0
    assert np.all(remove_speckles(disp, 4, 2.0)[disp == -3.25] == -3.25)


def test_fill_is_the_kitti_background_interpolation():
    rng = np.random.default_rng(1)
    disp = rng.random((12, 14)).astype(np.float32) * 10
    disp[rng.random(disp.shape) < 0.4] = np.nan
    np.testing.assert_array_equal(fill_invalid(disp), fill_invalid_background(disp))
    assert not np.isnan(fill_invalid(disp)).any()


@pytest.mark.parametrize("size", [3, 5, 7])
def test_median_fast_path_is_exact(size):
    rng = np.random.default_rng(4)
    disp = (rng.random((40, 50)) * 60).astype(np.float32)
    disp[rng.random(disp.shape) < 0.02] = np.nan
    np.testing.assert_array_equal(median_filter(disp, size), reference_median(disp, size))


def test_refinement_options_are_checked():
    d = np.random.default_rng(0).random((5, 6), dtype=np.float32) * 10
    for call, words in [
        (lambda: median_filter(d, None), "median size"),
        (lambda: median_filter(d, 4), "odd"),
        (lambda: remove_speckles(d, 10, np.nan), "max_diff"),
        (lambda: remove_speckles(d, 10, -1), "max_diff"),
        (lambda: remove_speckles(d, 2.5), "max_size"),
    ]:
        with pytest.raises(StereoKitError, match=words):
            call()
    # windows and regions larger than the image are the whole image, not a crash
    whole = median_filter(d, 100001)
    assert np.all(whole == np.sort(d.ravel())[(d.size - 1) // 2])  # the lower median of all 30 values
    assert np.isnan(remove_speckles(d, 2**40, 100.0)).all()  # one region of 30 pixels <= max_size: removed


def test_speckles_exact_for_large_disparities_in_a_narrow_range():
    # a smooth ramp 2040 .. 2056 px in 1/4 px steps (one region) and a 4-pixel blob 5 px off: only the range
    # (16 px) sets the fixed-point step, so the ramp stays whole even where 16 * d leaves int16 (d >= 2048)
    disp = np.repeat((2040.0 + 0.25 * np.arange(65, dtype=np.float32))[None, :], 12, axis=0)
    disp[5:7, 30:32] += 5.0
    out = remove_speckles(disp, max_size=10, max_diff=1.0)
    blob = np.zeros(disp.shape, bool)
    blob[5:7, 30:32] = True
    assert np.isnan(out[blob]).all()
    np.testing.assert_array_equal(out[~blob], disp[~blob])


def test_refinement_returns_new_arrays():
    # no step hands back the caller's array, even when it changes nothing
    d = np.full((6, 7), 3.0, np.float32)
    for out in (median_filter(d, 1), remove_speckles(d, 0), remove_speckles(d, 10), fill_invalid(d)):
        assert not np.shares_memory(out, d)


def test_speckles_treat_infinite_disparities_as_invalid():
    # +-inf (PFM's invalid marker) is no disparity: it neither joins a region nor sets the fixed-point range
    disp = np.full((10, 10), 10.0, np.float32)
    disp[2:4, 2:4] = 30.0  # a 4-pixel blob
    disp[8, 8], disp[0, 9] = np.inf, -np.inf
    out = remove_speckles(disp, max_size=5, max_diff=1.0)
    assert np.isnan(out[2:4, 2:4]).all()
    assert np.isnan(out[8, 8]) and np.isnan(out[0, 9])
    assert np.all(out[np.isfinite(out)] == 10.0) and np.isfinite(out).sum() == 100 - 6


def test_speckles_use_four_connectivity_and_at_most_max_size():
    disp = np.full((12, 14), 10.0, np.float32)
    disp[5, 5:8] = 30.0  # two 3-pixel blobs touching only diagonally ((5, 7) and (6, 8)): two regions
    disp[6, 8:11] = 30.0
    out = remove_speckles(disp, max_size=4, max_diff=1.0)
    assert np.isnan(out[disp == 30.0]).all() and np.all(out[disp == 10.0] == 10.0)
    # a region of exactly max_size pixels is removed ("at most"), one more pixel keeps it
    blob = np.full((12, 14), 10.0, np.float32)
    blob[2:4, 2:5] = 30.0  # 6 pixels
    assert np.isnan(remove_speckles(blob, max_size=6)[2:4, 2:5]).all()
    assert np.all(remove_speckles(blob, max_size=5)[2:4, 2:5] == 30.0)


def test_speckle_difference_holds_to_a_sixteenth_of_a_pixel():
    # a 4-pixel blob 1.08 px above its surroundings (more than max_diff + 1/16) is its own region, whatever the
    # surroundings' offset from the map's minimum (10.0, top row) does to the rounding
    disp = np.full((12, 12), 10.0626, np.float32)
    disp[0, :] = 10.0
    disp[5:7, 5:7] = np.float32(10.0626) + np.float32(1.08)
    out = remove_speckles(disp, max_size=10, max_diff=1.0)
    assert np.isnan(out[5:7, 5:7]).all() and np.isfinite(out).sum() == 144 - 4
    # and a blob 0.94 px off (less than max_diff - 1/16) stays joined
    disp[5:7, 5:7] = np.float32(10.0626) + np.float32(0.94)
    np.testing.assert_array_equal(remove_speckles(disp, max_size=10, max_diff=1.0), disp)


def test_median_windows_on_thin_images():
    # a window larger than the short side but not the long one: clipped to the image, exact valid-only median
    rng = np.random.default_rng(9)
    disp = (rng.random((2, 11)) * 40).astype(np.float32)
    disp[0, 3] = np.nan
    for size in (3, 5, 7):
        np.testing.assert_array_equal(median_filter(disp, size), reference_median(disp, size))
        np.testing.assert_array_equal(median_filter(disp.T.copy(), size), reference_median(disp.T.copy(), size))
