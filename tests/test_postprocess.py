"""MC-CNN's post-processing steps (stereokit.postprocess) on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.postprocess import (
    CORRECT,
    MISMATCH,
    OCCLUSION,
    interpolate_lr,
    lr_labels,
    subpixel_parabola,
    thresholded_gaussian,
)


def test_lr_labels_with_negative_disparities():
    dr = np.full((1, 6), -2, np.float32)
    dl = dr.copy()
    dl[0, 2] = 1  # wrong, but d' = -2 passes the check at x = 2 (dr[0, 4] == -2): a mismatch, not an occlusion
    assert lr_labels(dl, dr, min_disp=-3)[0, 2] == MISMATCH
    # with the range starting at 0 a negative d' is not a candidate: nothing else is consistent, an occlusion
    assert lr_labels(dl, dr, min_disp=0)[0, 2] == OCCLUSION
    with pytest.raises(StereoKitError, match="tolerance"):
        lr_labels(dl, dr, tolerance=np.nan)
    with pytest.raises(StereoKitError, match="min_disp"):
        lr_labels(dl, dr, min_disp=0.5)


def test_mismatch_takes_a_real_neighbour_not_the_mean_of_two():
    # the 16 directions of the centre pixel reach 8 correct pixels at 30 and 8 at 5: the median is one of them
    disp = np.full((5, 5), 5.0, np.float32)
    disp[:, 3:] = 30.0
    disp[0, :] = 30.0
    labels = np.full((5, 5), CORRECT, np.uint8)
    labels[2, 2] = MISMATCH
    out = interpolate_lr(disp, labels)
    assert out[2, 2] == 30.0  # sorted values[16 // 2], as MC-CNN's code; np.median would give 17.5
    with pytest.raises(StereoKitError, match="labels"):
        interpolate_lr(disp, np.full((5, 5), 3, np.uint8))
    with pytest.raises(StereoKitError, match="2-D"):
        interpolate_lr(np.zeros(5, np.float32), np.zeros(5))


def test_subpixel_parabola_refuses_bad_volumes():
    disp = np.zeros((2, 3), np.float32)
    vol = np.ones((2, 3, 4), np.float32)
    for bad in (np.where(np.eye(3, 4, dtype=bool)[None], np.nan, vol).astype(np.float32), -np.inf * vol,
                vol.astype(np.float64)):
        with pytest.raises(StereoKitError):
            subpixel_parabola(disp, bad)


def test_thresholded_gaussian_options():
    d = np.arange(12, dtype=np.float32).reshape(3, 4)
    for sigma in (np.inf, 0, "x"):
        with pytest.raises(StereoKitError, match="sigma"):
            thresholded_gaussian(d, sigma, 1.0)
    # a huge sigma is a plain mean over the pixels within the threshold, without a huge kernel
    out = thresholded_gaussian(d, 1e6, np.inf)
    np.testing.assert_allclose(out, np.full(d.shape, d.mean()), rtol=1e-5)


def test_thresholded_gaussian_extreme_sigma_and_threshold_stay_defined():
    # sigma whose square underflows: the centre alone (not 0 / 0 = NaN everywhere); a threshold below float32's
    # smallest step: equal disparities only, the centre's own among them (not an empty sum)
    d = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, np.nan]], np.float32)
    np.testing.assert_array_equal(thresholded_gaussian(d, 1e-300, 2.0), d)
    np.testing.assert_array_equal(thresholded_gaussian(d, 1.0, 1e-50), d)
    # and equal neighbours are still averaged in under the tiny threshold: a flat map stays flat
    np.testing.assert_array_equal(thresholded_gaussian(np.full((3, 3), 4.0, np.float32), 1.0, 1e-50),
                                  np.full((3, 3), 4.0, np.float32))


def test_subpixel_parabola_keeps_range_ends_and_non_convex_triples():
    # costs per disparity 0..4 (min_disp 0); disp is the disparity the fit starts from
    vol = np.array([[[1.0, 2.0, 3.0, 4.0, 1.5],  # disp 0: first of the range, no C(d-1): kept
                     [3.0, 2.5, 2.0, 1.5, 1.0],  # disp 4: last of the range, no C(d+1): kept
                     [0.0, 1.0, 2.0, 1.5, 5.0],  # disp 2: concave (C+ - 2C + C- < 0): kept
                     [0.0, 1.0, 2.0, 3.0, 5.0],  # disp 2: straight line (denominator 0): kept
                     [5.0, 2.0, 1.0, 3.0, 9.0]]], np.float32)  # disp 2: convex: 2 - (3 - 2) / (2 * 3) = 11 / 6
    disp = np.array([[0, 4, 2, 2, 2]], np.float32)
    out = subpixel_parabola(disp, vol)
    np.testing.assert_array_equal(out[0, :4], disp[0, :4])
    assert out[0, 4] == pytest.approx(11 / 6, abs=1e-6)


def test_subpixel_parabola_never_moves_a_full_pixel():
    # a convex triple whose vertex lies more than a pixel away (disp not the minimum of the three): kept as is;
    # C = (0, 1, 2.5) at d = 1, 2, 3: offset (2.5 - 0) / (2 * (2.5 - 2 + 0)) = 2.5, outside (-1, 1)
    vol = np.array([[[9.0, 0.0, 1.0, 2.5, 9.0]]], np.float32)
    assert subpixel_parabola(np.array([[2.0]], np.float32), vol)[0, 0] == 2.0


def test_thresholded_gaussian_threshold_is_strict():
    # neighbours exactly `threshold` apart are excluded (|D(p) - D(q)| < threshold): each pixel keeps its value
    d = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(thresholded_gaussian(d, 1.0, 1.0), d)
    # just above it they are averaged: pixel (0, 0) sees itself (weight 1), two 1.0 at distance 1, one 0.0 at sqrt 2
    w1, w2 = np.exp(-0.5), np.exp(-1.0)
    out = thresholded_gaussian(d, 1.0, 1.5)
    assert out[0, 0] == pytest.approx(2 * w1 / (1 + 2 * w1 + w2), rel=1e-6)


def _one_correct_pixel(y, x, size=13, value=7.0):
    """A map where every pixel is a mismatch except (y, x)."""
    disp = np.full((size, size), np.nan, np.float32)
    labels = np.full((size, size), MISMATCH, np.uint8)
    disp[y, x], labels[y, x] = value, CORRECT
    return disp, labels


@pytest.mark.parametrize("dy, dx", [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1),
                                    (1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)])
def test_mismatch_searches_the_papers_16_directions(dy, dx):
    # the only correct pixel lies on this direction's ray from the centre (6, 6), one or three steps out: found
    for steps in (1, 3):
        disp, labels = _one_correct_pixel(6 + steps * dy, 6 + steps * dx)
        assert interpolate_lr(disp, labels)[6, 6] == 7.0


def test_mismatch_ignores_pixels_off_the_16_rays():
    for dy, dx in [(2, 3), (3, 1), (-3, 2), (1, 4)]:  # on none of the 16 rays from (6, 6)
        disp, labels = _one_correct_pixel(6 + dy, 6 + dx)
        assert np.isnan(interpolate_lr(disp, labels)[6, 6])


def test_mismatch_takes_the_nearest_correct_pixel_of_each_ray():
    disp = np.full((7, 7), np.nan, np.float32)
    labels = np.full((7, 7), MISMATCH, np.uint8)
    disp[3, 4], disp[3, 6] = 5.0, 9.0  # both on the ray (0, 1): only the nearer one counts
    labels[3, 4] = labels[3, 6] = CORRECT
    assert interpolate_lr(disp, labels)[3, 3] == 5.0
